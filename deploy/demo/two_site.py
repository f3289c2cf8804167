#!/usr/bin/python3
"""Two data-centre sites linked by two dpsec gateways, in network namespaces.

    hA 10.1.0.2 -- gwA [dpsec] == ESP over 192.0.2.0/24 == gwB [dpsec] -- hB 10.2.0.2

Keys are fresh random AES-128-GCM keys installed with the same grammar dpsecctl
uses. The demo proves the wire carries only ESP, measures TCP throughput with
iperf3, prints the SAs with their counters, and tears everything down. Any
failed step makes it exit non-zero.
"""
import json
import os
import secrets
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("DPT_DATAPLANE", os.path.join(REPO, "build/dpsec-dataplane"))
sys.path.insert(0, os.path.join(REPO, "tests", "netns"))
import topo  # noqa: E402  (the netns topology shared with the tests)


def step(msg):
    print("\n== %s" % msg, flush=True)


def sa_lines(me, peer, spi_out, spi_in, key_out, key_in, local, remote):
    return [
        "sa add src %s dst %s proto esp spi %s dir out mode tunnel aead aes-gcm-128 %s"
        % (me, peer, spi_out, key_out),
        "sa add src %s dst %s proto esp spi %s dir in mode tunnel aead aes-gcm-128 %s"
        " replay-window 1024" % (peer, me, spi_in, key_in),
        "policy add src %s dst %s dir out action protect spi %s" % (local, remote, spi_out),
        "policy add src %s dst %s dir in action protect spi %s" % (remote, local, spi_in),
    ]


def main():
    key_ab = "0x" + secrets.token_hex(20)  # 16-byte key + 4-byte salt
    key_ba = "0x" + secrets.token_hex(20)
    extra = {
        "gwA": sa_lines("192.0.2.1", "192.0.2.2", "0x1001", "0x2001", key_ab, key_ba,
                        "10.1.0.0/24", "10.2.0.0/24"),
        "gwB": sa_lines("192.0.2.2", "192.0.2.1", "0x2001", "0x1001", key_ba, key_ab,
                        "10.2.0.0/24", "10.1.0.0/24"),
    }
    step("starting two sites: hA - gwA (dpsec) - gwB (dpsec) - hB")
    t = topo.Topology(gwa="dpsec", gwb="dpsec", extra=extra)
    ok = False
    try:
        step("ping hA -> hB through the tunnel")
        t.ping("hA", "10.2.0.2", count=3)  # warm-up: neighbours resolve
        got, out = t.ping("hA", "10.2.0.2", count=5)
        print(out.strip())
        if got != 5:
            raise SystemExit("demo: expected 5 replies, got %d" % got)

        step("the wire between the gateways carries only ESP")
        cap = subprocess.Popen(["ip", "netns", "exec", t["gwB"].name, "tcpdump", "-l", "-n",
                                "-c", "4", "-i", "v-outside", "ip"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
        time.sleep(1)
        t.ping("hA", "10.2.0.2", count=3)
        try:
            wire, _ = cap.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            cap.kill()
            wire, _ = cap.communicate()
        print(wire.strip())
        if "ESP" not in wire or "ICMP" in wire:
            raise SystemExit("demo: the wire did not show ESP only")

        step("iperf3 TCP hA -> hB for 5 s")
        srv = subprocess.Popen(["ip", "netns", "exec", t["hB"].name, "iperf3", "-s", "-1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        res = t["hA"].exec(["iperf3", "-c", "10.2.0.2", "-t", "5", "--json"], timeout=60)
        srv.wait(timeout=10)
        mbps = json.loads(res.stdout)["end"]["sum_received"]["bits_per_second"] / 1e6
        print("throughput: %.1f Mbit/s (two dataplanes sharing this machine's cores)" % mbps)

        for gw in ("gwA", "gwB"):
            step("dpsecctl show sa on %s" % gw)
            print(t.dp(gw).ctl("show", "sa").stdout.rstrip())
        ok = True
    finally:
        step("tearing down")
        t.teardown()
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    if t.tag in left:
        raise SystemExit("demo: namespaces left behind")
    print("\ndemo %s" % ("passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
