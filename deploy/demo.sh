#!/usr/bin/env bash
# `make demo`: a working two-site dpsec setup in network namespaces, end to end.
# Installs what is missing, builds, reserves hugepages, then runs deploy/demo/two_site.py.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: run as root (network namespaces, hugepages, TAP devices)" >&2
	exit 1
fi
if ! command -v protoc-c >/dev/null || ! pkg-config --exists libdpdk ||
	! /usr/bin/python3 -c 'import scapy' 2>/dev/null || ! command -v iperf3 >/dev/null; then
	deploy/deps.sh
fi
make -j2 all
deploy/hugepages.sh
exec /usr/bin/python3 deploy/demo/two_site.py "$@"
