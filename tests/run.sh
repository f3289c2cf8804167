#!/usr/bin/env bash
# Run every dpsec test suite: build (programs, sanitizer variants, unit tests), reserve
# hugepages, then the cmocka unit tests and every pytest directory under tests/.
# Ends with one line "N passed, N failed"; exits non-zero if anything failed
# or a suite could not run.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
PY=/usr/bin/python3 # Debian's (scapy, pytest), not whatever python3 is first on PATH
export PYTHONDONTWRITEBYTECODE=1 # keep the work tree clean
UNIT_TIMEOUT=${UNIT_TIMEOUT:-300}
PYTEST_TIMEOUT=${PYTEST_TIMEOUT:-1800}
LOGDIR=$ROOT/build/test-logs
# The harness self-test switch must never turn a real run into a kernel-router run.
unset DPT_GWA_KERNEL

passed=0
failed=0
skipped=0
problems=()

note() { echo "== $*"; }
fail_suite() { # a suite that could not run, or a step that broke, counts as one failure
	failed=$((failed + 1))
	problems+=("$1")
	echo "== FAILED: $1"
}

if [ "$(id -u)" -ne 0 ]; then
	echo "tests/run.sh: must run as root (netns, hugepages, apt); try: sudo make test" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

# --- leftovers of earlier runs (only what the tests create: dpt-*) -----------
cleanup_leftovers() {
	local ns pid
	for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^dpt-/ {print $1}'); do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null; done
		sleep 0.5
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null && echo "removed leftover netns $ns"
	done
	rm -f /dev/hugepages/dpt-* 2>/dev/null
	rm -rf /var/run/dpdk/dpt-* /tmp/dpt-* 2>/dev/null
	return 0
}
note "cleaning leftovers"
cleanup_leftovers

# --- dependencies (cheap check; deploy/deps.sh does the real work) -----------
deps_ok() {
	command -v protoc-c >/dev/null || return 1
	pkg-config --exists libdpdk || return 1
	[ -f /usr/include/cmocka.h ] || return 1
	[ -d build/strongswan/strongswan-5.9.8/src/libcharon ] || return 1
	local p
	for p in python3-scapy python3-pytest tshark iperf3 strongswan-charon libipsec-mb-dev; do
		[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || return 1
	done
}
if deps_ok; then
	note "dependencies present"
else
	note "installing dependencies (deploy/deps.sh)"
	deploy/deps.sh || fail_suite "deploy/deps.sh"
fi

# --- build ---------------------------------------------------------------------
note "make -k -j2 all san"
# -k: build what can be built, so the suites that do not depend on a broken part still run.
make -k -j2 all san || fail_suite "build (make all san)"

# --- hugepages -----------------------------------------------------------------
note "deploy/hugepages.sh"
deploy/hugepages.sh || fail_suite "deploy/hugepages.sh"

mkdir -p "$LOGDIR"

# --- unit tests (cmocka, TAP output) ----------------------------------------------
# Count from cmocka's TAP lines: "ok N", "not ok N", "not ok N # SKIP"; a binary that
# exits non-zero without a failing test line (crash, sanitizer) counts as one failure,
# as does every planned test that never reported.
run_unit() {
	local src=$1 name bin log rc counts p f s plan
	name=$(basename "$src" .c)
	bin=build/tests/$name
	log=$LOGDIR/$name.log
	note "unit: $bin"
	if [ ! -x "$bin" ]; then
		fail_suite "unit $name: $bin not built"
		return
	fi
	CMOCKA_MESSAGE_OUTPUT=TAP timeout -k 5 "$UNIT_TIMEOUT" "$bin" >"$log" 2>&1
	rc=$?
	cat "$log"
	counts=$(awk '
		/^1\.\.[0-9]+/ { split($1, a, "\\.\\."); plan += a[2] }
		/^ok [0-9]+/ { p++ }
		/^not ok [0-9]+/ { if ($0 ~ /# SKIP/) s++; else f++ }
		END { printf "%d %d %d %d\n", p, f, s, plan }' "$log")
	read -r p f s plan <<<"$counts"
	if [ $((p + f + s)) -lt "$plan" ]; then
		f=$((f + plan - p - f - s))
	fi
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		problems+=("unit $name exited $rc")
	fi
	if [ $((p + f + s)) -eq 0 ]; then
		fail_suite "unit $name: ran no test (exit $rc)"
		return
	fi
	echo "== unit $name: $p passed, $f failed, $s skipped (exit $rc)"
	[ "$f" -gt 0 ] && problems+=("unit $name: $f failed")
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
}
shopt -s nullglob
for src in tests/unit/test_*.c; do
	run_unit "$src"
done

# --- pytest suites: every tests/<dir>/ holding test_*.py ------------------------------
run_pytest() {
	local dir=$1 name xml rc counts p f s
	name=$(basename "$dir")
	xml=$LOGDIR/pytest-$name.xml
	rm -f "$xml"
	note "pytest: $dir"
	timeout -k 10 "$PYTEST_TIMEOUT" "$PY" -m pytest -v -p no:cacheprovider \
		--junitxml="$xml" "$dir"
	rc=$?
	if [ "$rc" -eq 5 ]; then
		fail_suite "pytest $dir: no tests collected"
		return
	fi
	if [ ! -s "$xml" ]; then
		fail_suite "pytest $dir: did not finish (exit $rc)"
		return
	fi
	counts=$("$PY" - "$xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
suites = [r] if r.tag == "testsuite" else r.findall("testsuite")
t = sum(int(x.get("tests", 0)) for x in suites)
f = sum(int(x.get("failures", 0)) + int(x.get("errors", 0)) for x in suites)
s = sum(int(x.get("skipped", 0)) for x in suites)
print(max(t - f - s, 0), f, s)
EOF
	) || {
		fail_suite "pytest $dir: unreadable report $xml"
		return
	}
	read -r p f s <<<"$counts"
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		problems+=("pytest $dir exited $rc")
	fi
	echo "== pytest $name: $p passed, $f failed, $s skipped (exit $rc)"
	[ "$f" -gt 0 ] && problems+=("pytest $dir: $f failed")
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
}
for dir in tests/*/; do
	dir=${dir%/}
	files=("$dir"/test_*.py)
	[ ${#files[@]} -gt 0 ] && run_pytest "$dir"
done

cleanup_leftovers >/dev/null

if [ $((passed + failed + skipped)) -eq 0 ]; then
	fail_suite "no test ran"
fi
if [ ${#problems[@]} -gt 0 ]; then
	echo "== problems:"
	printf '   %s\n' "${problems[@]}"
fi
# skipped tests are neither passed nor failed; the last line keeps its fixed form
[ "$skipped" -gt 0 ] && echo "== $skipped skipped (not counted as passed)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
