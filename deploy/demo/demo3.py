#!/usr/bin/python3
"""`make demo`: three sites meshed by dpsec-mesh, in network namespaces.

    hA -- gwA [dpsec] --+                        a, b: dpsec-dataplane + dpsec-ike
    hB -- gwB [dpsec] --+-- inet (bridge)        c: Debian's charon, kernel-libipsec
    hC -- gwC [stock] --+

dpsec-mesh writes the CA, certificates, swanctl configs and dataplane configs from a
three-line-per-site inventory; each gateway loads what was generated for it. The first ping
between two sites brings their tunnel up (trap policies); then every pair exchanges pings
both ways and TCP traffic (iperf3). Prints the SAs as swanctl and dpsecctl see them on the
dpsec gateways and the throughput, tears everything down and checks nothing is left.
Exits non-zero if any step fails.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mesh3  # noqa: E402

PING_COUNT = 5
IPERF_S = 3


def step(msg):
    print("\n== %s" % msg, flush=True)


def run_demo(m):
    step("inventory (%s)" % m.inventory)
    print(open(m.inventory).read().strip())
    step("dpsec-mesh wrote %s" % m.out)
    for root, _, files in sorted(os.walk(m.out)):
        for f in sorted(files):
            print("  " + os.path.relpath(os.path.join(root, f), m.out))

    for x, y in m.pairs():
        step("first packets %s -> %s start IKE (trap policy)" % (x.host_node, y.host_node))
        print("tunnel %s <-> %s up after %.1f s" % (x.name, y.name, m.bring_up(x, y)))

    step("ping between every pair of sites, both ways")
    for x, y in m.pairs():
        for src, dst in ((x, y), (y, x)):
            got, out = m.ping(src, dst, count=PING_COUNT, interval=0.2)
            print("%s -> %s: %d/%d replies" % (src.host_node, dst.host_node, got, PING_COUNT))
            # a single loss happens on this shared machine; a broken tunnel loses them all
            if got < PING_COUNT - 1:
                raise mesh3.MeshError("%s -> %s: %d/%d replies\n%s" % (
                    src.host_node, dst.host_node, got, PING_COUNT, out))

    for x, y in m.pairs():
        step("the Internet segment sees only ESP while %s pings %s" % (x.host_node, y.host_node))
        wire = m.capture_wire(x, y)
        print(wire.rstrip())
        if "ESP" not in wire or "ICMP" in wire:
            raise mesh3.MeshError("%s <-> %s: the wire did not carry ESP only" % (x.name, y.name))

    step("iperf3 TCP, %d s per pair" % IPERF_S)
    rates = []
    for x, y in m.pairs():
        mbps = m.iperf(x, y, IPERF_S)
        rates.append((x, y, mbps))
        print("%s -> %s: %.1f Mbit/s" % (x.host_node, y.host_node, mbps))

    for s in m.sites:
        if s.kind != "dpsec":
            continue
        step("swanctl --list-sas on %s (dpsec-ike)" % s.node)
        print(s.ike.swanctl("--list-sas").stdout.rstrip())
        step("dpsecctl show sa on %s" % s.node)
        print(s.dp.ctl("show", "sa").stdout.rstrip())

    step("throughput (all gateways and hosts share this machine's cores)")
    for x, y, mbps in rates:
        print("  %-14s <-> %-14s %8.1f Mbit/s" % ("%s (%s)" % (x.name, x.kind),
                                                 "%s (%s)" % (y.name, y.kind), mbps))


def main():
    m = mesh3.Mesh()
    ok = False
    t0 = time.monotonic()
    try:
        step("starting 3 sites: a (dpsec), b (dpsec), c (stock strongSwan)")
        m.start()
        run_demo(m)
        ok = True
    except Exception as e:  # any failed step: report it, tear down, exit non-zero
        print("\ndemo: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        for name, text in m.logs().items():
            print("---- %s (last lines)\n%s" % (name, "\n".join(text.splitlines()[-40:])),
                  file=sys.stderr)
    finally:
        step("tearing down")
        m.teardown()
    left = m.leftovers()
    if left:
        print("demo: left behind: %s" % ", ".join(left), file=sys.stderr)
        ok = False
    else:
        print("no namespaces, processes or hugepage files left")
    print("\ndemo %s in %.0f s" % ("passed" if ok else "FAILED", time.monotonic() - t0))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
