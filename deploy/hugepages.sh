#!/usr/bin/env bash
# Reserve 2 MiB hugepages for dpsec-dataplane and mount hugetlbfs at /dev/hugepages.
# HUGEPAGES=N sets the wanted number of pages (default 2048 = 4 GiB). The reservation is
# only ever raised, never lowered, so other DPDK users on the machine keep theirs.
set -euo pipefail

WANT=${HUGEPAGES:-2048}
MNT=/dev/hugepages
NR=/proc/sys/vm/nr_hugepages

say() { echo "hugepages: $*"; }
die() {
	echo "hugepages: $*" >&2
	exit 1
}

[[ "$WANT" =~ ^[0-9]+$ ]] || die "HUGEPAGES must be a number of pages, got '$WANT'"
[ "$(id -u)" -eq 0 ] || die "must run as root (writes $NR, mounts hugetlbfs)"

size_kb=$(awk '/^Hugepagesize:/{print $2}' /proc/meminfo)
[ "$size_kb" = 2048 ] || say "note: default hugepage size is ${size_kb} kB, not 2048 kB"

cur=$(cat "$NR")
if [ "$cur" -lt "$WANT" ]; then
	say "raising $NR from $cur to $WANT"
	echo "$WANT" >"$NR" || die "cannot write $NR"
	# Fragmented memory may yield fewer pages at first; compacting and retrying often helps.
	if [ "$(cat "$NR")" -lt "$WANT" ] && [ -w /proc/sys/vm/compact_memory ]; then
		echo 1 >/proc/sys/vm/compact_memory || true
		echo "$WANT" >"$NR" || true
	fi
else
	say "$NR is $cur (>= $WANT), left as is"
fi

total=$(awk '/^HugePages_Total:/{print $2}' /proc/meminfo)
free=$(awk '/^HugePages_Free:/{print $2}' /proc/meminfo)
if [ "$total" -lt "$WANT" ]; then
	# A partial reservation would only starve the rest of the machine: give it back.
	[ "$total" -gt "$cur" ] && echo "$cur" >"$NR"
	die "asked for $WANT pages of ${size_kb} kB but the kernel reserved only $total" \
		"(HugePages_Free $free); free memory or reboot, or set HUGEPAGES lower"
fi
say "HugePages_Total $total, HugePages_Free $free (${size_kb} kB each)"

if awk -v m="$MNT" '$2 == m && $3 == "hugetlbfs" {f=1} END{exit !f}' /proc/mounts; then
	say "hugetlbfs already mounted at $MNT"
else
	mkdir -p "$MNT"
	mount -t hugetlbfs -o pagesize=2M nodev "$MNT" || die "cannot mount hugetlbfs at $MNT"
	say "mounted hugetlbfs at $MNT"
fi
