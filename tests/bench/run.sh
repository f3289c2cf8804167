#!/usr/bin/env bash
# `make bench`: build, reserve hugepages, run the benchmark matrix (tests/bench/bench.py),
# write build/bench/results.{json,md} and print the table. Stops by itself; cleans up its
# netns (dpb-*), processes and hugepage files on exit, and leftovers of an interrupted run
# at start. Extra arguments go to bench.py (e.g. --no-e2e, --sizes 64, --window 3).
set -euo pipefail
cd "$(dirname "$0")/../.."

PY=/usr/bin/python3 # Debian's: scapy and cryptography
OUT=build/bench

[ "$(id -u)" -eq 0 ] || { echo "bench: must run as root" >&2; exit 1; }

cleanup() {
	for ns in $(ip netns list | awk '/^dpb-/{print $1}'); do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
		ip netns del "$ns" 2>/dev/null || true
	done
	rm -f /dev/hugepages/dpb-* 2>/dev/null || true
	rm -rf /var/run/dpdk/dpb-* 2>/dev/null || true
	rm -rf "$OUT/work"
}
cleanup
trap cleanup EXIT
trap 'exit 130' INT TERM

deploy/deps.sh # a fresh machine: packages and the strongSwan source; else only checks
make -j2 all "$OUT/memlat"
deploy/hugepages.sh
mkdir -p "$OUT"
# Whole run bounded: ~15 min matrix + e2e; never hang a CI slot.
timeout --signal=TERM --kill-after=30 2400 "$PY" tests/bench/bench.py --out "$OUT" "$@"
