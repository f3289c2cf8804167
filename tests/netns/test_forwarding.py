"""Plain IPv4 forwarding through a dpsec gateway (gwA) in the netns topology.

hA 10.1.0.2 -- gwA (dpsec: inside 10.1.0.1, outside 192.0.2.1) -- gwB (kernel) -- hB 10.2.0.2
"""

import os
import re
import struct
import time

import pytest

import topo as T

HA, HB = "10.1.0.2", "10.2.0.2"
GWA_IN = "10.1.0.1"
ROUTE_SYNC_S = 1.0      # a kernel route must reach the dataplane within this
IDLE_SAMPLE_S = 5.0
IDLE_MAX_CORE = 0.05    # an idle dataplane may use at most 5 % of one core
BURST = 5               # frames of each malformed kind


def ping_ok(topo, dst, src_node="hA"):
    """First pings may be lost while next hops resolve; after that none may be."""
    got, out = topo.ping(src_node, dst, count=5, wait=1)
    assert got >= 3, "expected >= 3/5 replies from %s:\n%s" % (dst, out)
    got, out = topo.ping(src_node, dst, count=3, wait=1)
    assert got == 3, "expected 3/3 replies from %s:\n%s" % (dst, out)


def test_ping_gateway_inside_address(topo):
    """(a) ARP and ICMP to the gateway itself go through the TAP and back."""
    ping_ok(topo, GWA_IN)
    # The kernel on gwA learned hA through ARP that crossed the dataplane.
    neigh = topo["gwA"].ip("neigh", "show", HA, "dev", "dp-inside").stdout
    assert "lladdr" in neigh, neigh


def test_ping_through_gateway(topo):
    """(b) hA reaches hB through gwA and the kernel router gwB."""
    ping_ok(topo, HB)


def test_ttl_expired_answered_by_gateway(topo):
    """(h) a TTL-1 packet is answered with ICMP time exceeded from gwA's inside address."""
    ping_ok(topo, GWA_IN)  # hA's and gwA's neighbour entries exist
    out = ""
    for _ in range(3):
        _, out = topo.ping("hA", HB, count=1, wait=1, extra=("-t", "1"))
        if re.search(r"From %s .*Time to live exceeded" % re.escape(GWA_IN), out):
            return
    pytest.fail("no time exceeded from %s:\n%s" % (GWA_IN, out))


def test_kernel_route_mirrored_and_used(topo):
    """(c) `ip route add` on gwA's TAP reaches the dataplane FIB within 1 s and carries traffic."""
    gwA, gwB, hB = topo["gwA"], topo["gwB"], topo["hB"]
    hB.ip("addr", "add", "10.77.0.1/32", "dev", "lo")
    gwB.ip("route", "add", "10.77.0.0/24", "via", HB)
    gwA.ip("route", "add", "10.77.0.0/24", "via", "192.0.2.2", "dev", "dp-outside")
    t0 = time.monotonic()
    dp = topo.dp("gwA")
    if dp is not None:
        want = {"dst": "10.77.0.0/24", "via": "192.0.2.2"}
        seen = []
        while True:
            seen = dp.routes()
            if any(r["dst"] == want["dst"] and r["via"] == want["via"] for r in seen):
                break
            assert time.monotonic() - t0 < ROUTE_SYNC_S, \
                "route %s not in dataplane after %.1f s: %s" % (want, ROUTE_SYNC_S, seen)
            time.sleep(0.05)
        r = next(r for r in seen if r["dst"] == want["dst"])
        assert r["dev"] in (None, "outside", "dp-outside"), r
    ping_ok(topo, "10.77.0.1")


def test_dpsecctl_route_without_dev(topo, gwa):
    """`dpsecctl route add P via G` (no dev): the kernel picks the TAP, the mirror brings it back."""
    topo["hB"].ip("addr", "add", "10.78.0.1/32", "dev", "lo")
    topo["gwB"].ip("route", "add", "10.78.0.0/24", "via", HB)
    dp = topo.dp("gwA")
    dp.ctl("route", "add", "10.78.0.0/24", "via", "192.0.2.2")
    r = [r for r in dp.routes() if r["dst"] == "10.78.0.0/24"]
    assert r and r[0]["via"] == "192.0.2.2" and r[0]["dev"] == "outside", dp.routes()
    ping_ok(topo, "10.78.0.1")
    dp.ctl("route", "del", "10.78.0.0/24")
    assert not [r for r in dp.routes() if r["dst"] == "10.78.0.0/24"]
    bad = dp.ctl("route", "add", "10.79.0.0/24", "via", "198.51.100.1", check=False)
    assert bad.returncode == 1 and "10.79.0.0/24" in bad.stderr, bad.stderr


def test_idle_cpu(topo, gwa):
    """(f) an idle dataplane sleeps: < 5 % of a core over 5 s without traffic."""
    time.sleep(1.0)
    tick = os.sysconf("SC_CLK_TCK")

    def cpu_s():
        with open("/proc/%d/stat" % gwa.pid) as f:
            # comm may contain spaces; fields after ')' start at state (field 3)
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick  # utime, stime

    c0, t0 = cpu_s(), time.monotonic()
    time.sleep(IDLE_SAMPLE_S)
    c1, t1 = cpu_s(), time.monotonic()
    share = (c1 - c0) / (t1 - t0)
    assert share < IDLE_MAX_CORE, "idle dataplane used %.1f %% of a core" % (share * 100)


def _ipv4_header(ihl=5, total_len=None, payload_len=8, csum=None, csum_over=None):
    """A raw IPv4 header hA -> hB (ICMP) with chosen fields; checksum correct unless given."""
    hlen = 20
    tl = total_len if total_len is not None else hlen + payload_len
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", (4 << 4) | ihl, 0, tl, 0x1234, 0, 64, 1, 0,
                                bytes(map(int, HA.split("."))), bytes(map(int, HB.split(".")))))
    if csum is None:
        n = csum_over if csum_over is not None else hlen
        s = sum(struct.unpack("!%dH" % (n // 2), bytes(hdr[:n])))
        while s >> 16:
            s = (s & 0xFFFF) + (s >> 16)
        csum = ~s & 0xFFFF
    hdr[10:12] = struct.pack("!H", csum)
    return bytes(hdr)


def _good_csum(hdr):
    h = bytearray(hdr)
    h[10:12] = b"\0\0"
    s = sum(struct.unpack("!10H", bytes(h)))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def test_malformed_frames_dropped_and_counted(topo, gwa):
    """(g) malformed frames are dropped under the right counter; the gateway survives."""
    ping_ok(topo, GWA_IN)
    dst = bytes.fromhex(topo["gwA"].mac("dp-inside").replace(":", ""))
    src = bytes.fromhex(topo["hA"].mac("eth0").replace(":", ""))
    eth_ip = dst + src + b"\x08\x00"
    icmp = b"\x08\x00\xf7\xff\x00\x00\x00\x00"  # echo request, id 0 seq 0, valid checksum

    good = _ipv4_header()
    bad_csum = _ipv4_header(csum=_good_csum(good) ^ 0xFFFF)
    frames = {
        # Ethernet header alone, and 20 bytes: too short to hold an IPv4 header.
        "drop_runt": [eth_ip, eth_ip + good[:6]],
        # ihl=4 (16-byte header): checksum made valid over those 16 bytes so only ihl is wrong.
        "drop_bad_ip_header": [eth_ip + _ipv4_header(ihl=4, csum_over=16) + icmp],
        "drop_bad_ip_checksum": [eth_ip + bad_csum + icmp],
        # total length 1000 in a 42-byte frame
        "drop_ip_truncated": [eth_ip + _ipv4_header(total_len=1000) + icmp],
        "drop_ethertype": [dst + src + b"\x88\xb5" + bytes(46)],
    }
    # Frames shorter than an Ethernet header cannot be injected through a veth: the kernel
    # rejects them at the packet socket (min_header_len), so none can reach the dataplane.
    _, before = gwa.stats()
    sent = {}
    for reason, kinds in frames.items():
        burst = [f for f in kinds for _ in range(BURST)]
        sent[reason] = T.scapy_send(topo["hA"], "eth0", burst)
        assert sent[reason] == len(burst)
    deadline = time.monotonic() + 2.0
    while True:
        _, after = gwa.stats()
        delta = {r: after["inside"].get(r, 0) - before["inside"].get(r, 0) for r in frames}
        if delta == sent or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert delta == sent, "drop counters moved by %s, sent %s\ncounters: %s" % (
        delta, sent, after["inside"])
    assert gwa.alive(), "dataplane died on malformed input:\n" + gwa.log_text()
    ping_ok(topo, HB)


def test_no_mbuf_leak_after_traffic(topo, gwa):
    """(e) once traffic stops, every mbuf is back: mbuf_in_use == mbuf_in_use_baseline."""
    ping_ok(topo, HB)
    _, before = gwa.stats()
    # Forwarded path and exception path (TAP) both.
    topo.ping("hA", HB, count=2000, wait=1, extra=("-f",), timeout=120)
    topo.ping("hA", GWA_IN, count=500, wait=1, extra=("-f",), timeout=60)
    time.sleep(1.0)
    deadline = time.monotonic() + 3.0
    while True:
        glob, after = gwa.stats()
        if glob["mbuf_in_use"] == glob["mbuf_in_use_baseline"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    rx = after["inside"]["rx"] - before["inside"].get("rx", 0)
    assert rx >= 2000, "traffic did not reach the dataplane (inside rx +%d)" % rx
    assert glob["mbuf_in_use"] == glob["mbuf_in_use_baseline"], glob


def test_bad_config_refuses_to_start(spare_dataplane):
    """(d) a config line that does not parse: exit non-zero, name file and line, start nothing."""
    dp = spare_dataplane("port 0 name inside\n"
                         "port 1 name outside\n"
                         "route add 10.2.0.0/33 via 192.0.2.2\n"
                         "addr add 10.1.0.1/24 dev inside\n")
    dp.start()
    try:
        rc = dp.wait_exit(timeout=30)
    except T.subprocess.TimeoutExpired:
        pytest.fail("dataplane kept running with a bad config:\n" + dp.log_text())
    log = dp.log_text()
    assert rc != 0, log
    assert dp.config in log and ":3:" in log, log
