#!/usr/bin/env bash
# Install everything dpsec needs to build, test and demo on Debian 12 (bookworm).
# Idempotent: when every package and the strongSwan source tree are already there,
# it only checks and exits (no apt-get update).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
SS_VERSION=5.9.8
SS_DIR=$BUILD/strongswan
SRC_LIST=/etc/apt/sources.list.d/dpsec-src.sources

PACKAGES=(
	build-essential pkg-config dpkg-dev clang-format
	dpdk dpdk-dev libdpdk-dev libipsec-mb-dev libssl-dev libnuma-dev libpcap-dev
	libprotobuf-c-dev protobuf-c-compiler libzmq3-dev libmnl-dev libcmocka-dev
	strongswan-charon strongswan-swanctl strongswan-pki libcharon-extra-plugins
	libstrongswan-standard-plugins libstrongswan-extra-plugins
	python3-scapy python3-pytest python3-cryptography tshark iproute2 iputils-ping iperf3 tcpdump ethtool procps systemd
)

say() { echo "deps: $*"; }

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: must run as root (apt-get install, /etc/apt)" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-y -q -o APT::Sandbox::User=root -o Dpkg::Options::=--force-confdef
	-o Dpkg::Options::=--force-confold)
updated=0
apt_update() {
	if [ "$updated" -eq 0 ]; then
		say "apt-get update"
		apt-get -q -o APT::Sandbox::User=root update
		updated=1
	fi
}

# --- packages ---------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = installed ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	say "missing packages: ${missing[*]}"
	# tshark asks whether non-root users may capture; answer no, never prompt.
	echo "wireshark-common wireshark-common/install-setuid boolean false" |
		debconf-set-selections
	apt_update
	say "apt-get install ${missing[*]}"
	apt-get install "${APT_OPTS[@]}" --no-install-recommends "${missing[@]}"
else
	say "all ${#PACKAGES[@]} packages present"
fi

# --- deb-src for bookworm (strongSwan headers: Debian ships no libcharon-dev) ---
have_src() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] && grep -Eq '^[[:space:]]*deb-src[[:space:]].*[[:space:]]bookworm([[:space:]]|$)' "$f" && return 0
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		# a deb822 stanza with Types containing deb-src and Suites containing bookworm
		awk 'BEGIN{RS=""; found=0}
		     /(^|\n)Types:[^\n]*deb-src/ && /(^|\n)Suites:[^\n]*[ \t]bookworm([ \t]|\n|$)/ {found=1}
		     END{exit !found}' "$f" && return 0
	done
	return 1
}

if have_src; then
	say "deb-src for bookworm already configured"
else
	main=/etc/apt/sources.list.d/debian.sources
	if [ ! -f "$main" ]; then
		echo "deps: $main not found; add a bookworm deb-src line by hand" >&2
		exit 1
	fi
	# Copy URIs/Suites/Components/Signed-By of the bookworm deb stanza.
	stanza=$(awk 'BEGIN{RS=""; ORS="\n"}
		/(^|\n)Types:[^\n]*deb/ && /(^|\n)Suites:[^\n]*[ \t]bookworm([ \t]|\n|$)/ {print; exit}' "$main")
	if [ -z "$stanza" ]; then
		echo "deps: no bookworm stanza in $main" >&2
		exit 1
	fi
	{
		echo "Types: deb-src"
		echo "$stanza" | grep -E '^(URIs|Suites|Components|Signed-By):'
	} >"$SRC_LIST"
	say "wrote $SRC_LIST:"
	sed 's/^/    /' "$SRC_LIST"
	updated=0
fi

# --- strongSwan source tree --------------------------------------------------
if [ -d "$SS_DIR/strongswan-$SS_VERSION/src/libcharon" ]; then
	say "strongSwan source present in $SS_DIR/strongswan-$SS_VERSION"
else
	# No deb-src index yet makes apt-cache fail, and awk's early exit can SIGPIPE it:
	# neither may end the script under `set -e -o pipefail`.
	srcver() {
		{ apt-cache showsrc strongswan 2>/dev/null || true; } |
			awk '/^Version: '"$SS_VERSION"'/ && !v {v=$2} END {print v}'
	}
	ver=$(srcver)
	if [ -z "$ver" ]; then
		apt_update
		ver=$(srcver)
	fi
	if [ -z "$ver" ]; then
		echo "deps: apt has no strongswan $SS_VERSION source package (deb-src missing?)" >&2
		exit 1
	fi
	mkdir -p "$SS_DIR"
	say "apt-get source strongswan into $SS_DIR"
	(cd "$SS_DIR" && apt-get -q -o APT::Sandbox::User=root source "strongswan=$ver")
	if [ ! -d "$SS_DIR/strongswan-$SS_VERSION/src/libcharon" ]; then
		echo "deps: strongSwan source not extracted to $SS_DIR/strongswan-$SS_VERSION" >&2
		exit 1
	fi
fi

# The strongSwan test scenarios hold directories named *.d (ipsec.d, ...), which the
# Makefile's dependency-file include would try to read as makefiles; only src/ is needed.
if [ -d "$SS_DIR/strongswan-$SS_VERSION/testing" ]; then
	say "removing $SS_DIR/strongswan-$SS_VERSION/testing (not needed, confuses make)"
	rm -rf "$SS_DIR/strongswan-$SS_VERSION/testing"
fi

say "done"
