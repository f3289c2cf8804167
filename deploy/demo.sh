#!/usr/bin/env bash
# `make demo`: a three-site dpsec mesh in network namespaces, end to end.
# Installs what is missing, builds, reserves hugepages, then runs deploy/demo/demo3.py:
# dpsec-mesh generates the sites' certificates and configs, two dpsec gateways and a stock
# strongSwan gateway bring their tunnels up and every pair of sites exchanges traffic.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: run as root (network namespaces, hugepages, TAP devices)" >&2
	exit 1
fi
have_deps() {
	command -v protoc-c >/dev/null && pkg-config --exists libdpdk &&
		command -v iperf3 >/dev/null && command -v tcpdump >/dev/null &&
		command -v pki >/dev/null && command -v swanctl >/dev/null &&
		[ -x /usr/lib/ipsec/charon ] &&
		[ -f /usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so ] &&
		[ -d build/strongswan/strongswan-5.9.8/src/libcharon ]
}
have_deps || deploy/deps.sh
make -j2 all
deploy/hugepages.sh
exec /usr/bin/python3 deploy/demo/demo3.py "$@"
