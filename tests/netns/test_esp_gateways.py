"""Two dpsec gateways joined by manually keyed ESP tunnels (issue 3).

    hA 10.1.0.2 -- gwA (dpsec) ==ESP 192.0.2.1 <-> 192.0.2.2== gwB (dpsec) -- hB 10.2.0.2

Both gateways get their SAs and policies from the startup config (the same grammar dpsecctl
speaks); the rekey test then changes them at run time through dpsecctl. What is checked:
hosts reach each other through the tunnel, the SA counters on both ends move, the wire between
the gateways carries only ESP (or ESP-in-UDP 4500) and never the hosts' cleartext, TCP and UDP
bulk traffic crosses, a DF packet too big once encrypted is answered with "fragmentation
needed", a make-before-break rekey under a continuous flow loses nothing, flushing gwA's SAs
and policies under traffic stops its ESP without harm and re-adding them restores the tunnel,
and no mbuf leaks once traffic stops.

Only one topology (two dataplanes) is alive at a time: the machine's hugepages are shared
with other test runs.
"""

import json
import re
import subprocess
import sys
import threading
import time

import pytest

import topo as T

HA, HB = "10.1.0.2", "10.2.0.2"
NET_A, NET_B = "10.1.0.0/24", "10.2.0.0/24"
GWA_OUT, GWB_OUT = "192.0.2.1", "192.0.2.2"

# SPIs: A->B and B->A before a rekey, and their successors.
SPI_AB, SPI_BA = 0x100, 0x200
SPI_AB_NEW, SPI_BA_NEW = 0x101, 0x201

NATT = " encap udp sport 4500 dport 4500"
NATT_PORT = 4500
IPPROTO_ESP = 50
IPPROTO_UDP = 17

# Key material per direction and generation; AEAD keys end with the 4-byte salt.
SUITES = {
    "gcm": lambda d, gen: "aead aes-gcm-128 0x%s" % (("%d%d" % (d, gen)) * 16 + "a1b2c3d4"),
    "cbc": lambda d, gen: "enc aes-cbc-256 0x%s auth hmac-sha256-128 0x%s"
    % (("%d%d" % (d, gen)) * 32, ("%d%d" % (gen, d)) * 32),
}

PINGS = 10
PING_PATTERN = "c0ffee5aa5d00d11"  # ping -p: fills the payload, easy to spot in cleartext
WARMUP_TRIES = 10
COUNTER_WAIT_S = 2.0
LEAK_WAIT_S = 5.0

# Hosts and wire all have 1500-byte MTUs: full-size TCP segments only cross once gwA's
# "fragmentation needed" has taught hA the path MTU (see test_oversized_df_packet_signals_pmtu).
WIRE_MTU = 1500
ESP_MIN_OVERHEAD = 20 + 8 + 8 + 2 + 16  # outer IPv4, ESP header, GCM IV, trailer, ICV

IPERF_TCP_S = 5
IPERF_UDP_S = 2
IPERF_UDP_RATE = "20M"
IPERF_UDP_LEN = 1200
IPERF_UDP_MAX_LOSS_PCT = 20.0

NATT_IPERF_TCP_S = 3
NATT_IPERF_MIN_BYTES = 1000000

FLUSH_PINGS = 250
FLUSH_INTERVAL = "0.02"   # 5 s of flow
FLUSH_AFTER_S = 1.5       # into the flow before the flush
FLUSH_WATCH_S = 1.2       # wire watched after the flush, while the flow goes on
FLUSH_SEQ_MARGIN = 1000   # re-added outbound SA resumes this far above the last sent

REKEY_PINGS = 1500
REKEY_INTERVAL = "0.01"
REKEY_AFTER_S = 4.0       # into the flow, so that old SAs carried a good share of it
REKEY_DRAIN_S = 0.5       # between switching outbound policies and deleting old SAs
REKEY_MIN_NEW = 300       # packets the new SAs must carry (about 10 s of the flow remain)


# ---------------------------------------------------------------------------------------------
# configuration

def sa_pair_lines(suite, encap, local, peer, spi_out, spi_in, dir_out, dir_in, gen=0):
    """`sa add` lines for one gateway: its outbound SA and its inbound SA. Every
    generation shares reqid 1, so an old inbound SA still delivers after a rekey."""
    enc = NATT if encap else ""
    algo = SUITES[suite]
    return [
        "sa add src %s dst %s proto esp spi 0x%08x dir out mode tunnel %s%s reqid 1"
        % (local, peer, spi_out, algo(dir_out, gen), enc),
        "sa add src %s dst %s proto esp spi 0x%08x dir in mode tunnel %s replay-window 64%s"
        " reqid 1" % (peer, local, spi_in, algo(dir_in, gen), enc),
    ]


def policy_lines(lnet, rnet, spi_out, spi_in, replace=False):
    tail = " replace" if replace else ""
    return ["policy add src %s dst %s dir out action protect spi 0x%08x%s"
            % (lnet, rnet, spi_out, tail),
            "policy add src %s dst %s dir in action protect spi 0x%08x%s"
            % (rnet, lnet, spi_in, tail)]


def tunnel_config(suite, encap):
    # Direction 1 is A->B, 2 is B->A: each SA's key is the same on both of its ends.
    a = sa_pair_lines(suite, encap, GWA_OUT, GWB_OUT, SPI_AB, SPI_BA, 1, 2)
    b = sa_pair_lines(suite, encap, GWB_OUT, GWA_OUT, SPI_BA, SPI_AB, 2, 1)
    return {"gwA": a + policy_lines(NET_A, NET_B, SPI_AB, SPI_BA),
            "gwB": b + policy_lines(NET_B, NET_A, SPI_BA, SPI_AB)}


# ---------------------------------------------------------------------------------------------
# one live topology at a time

def _log_registry():
    """conftest's list of objects whose logs a failing test shows (if conftest is loaded)."""
    mod = sys.modules.get("conftest")
    return getattr(mod, "_active", None)


class Tunnels:
    def __init__(self):
        self.kind = None
        self.topo = None

    def get(self, suite, encap):
        kind = (suite, encap)
        if self.kind == kind and self.topo is not None:
            return self.topo
        self.close()
        t = T.Topology(gwa="dpsec", gwb="dpsec", extra=tunnel_config(suite, encap))
        self.topo, self.kind = t, kind
        reg = _log_registry()
        if reg is not None:
            reg.append(t)
        return t

    def close(self):
        t, self.topo, self.kind = self.topo, None, None
        if t is None:
            return
        reg = _log_registry()
        if reg is not None and t in reg:
            reg.remove(t)
        t.teardown()


@pytest.fixture(scope="module")
def tunnels():
    holder = Tunnels()
    try:
        yield holder
    finally:
        holder.close()


def gateways(tunnels, suite, encap):
    t = tunnels.get(suite, encap)
    for node in ("gwA", "gwB"):
        assert t.dp(node).alive(), "%s dataplane died:\n%s" % (node, t.dp(node).log_text())
    return t


# ---------------------------------------------------------------------------------------------
# helpers

def sa_table(dp):
    """{(dir, spi): {"packets", "bytes", "drops", ...}} from `show sa --json`."""
    out = {}
    for info in dp.ctl_json("show", "sa").get("sas", []):
        sa = info["sa"]
        d = "out" if sa.get("dir") in ("DIR_OUT", 1) else "in"
        out[(d, int(sa["spi"]))] = {
            "packets": int(info.get("packets", 0)),
            "bytes": int(info.get("bytes", 0)),
            "drops": T.counters(info.get("drops")),
            "encap": sa.get("encap"),
        }
    return out


def sa_counts(topo):
    return {node: sa_table(topo.dp(node)) for node in ("gwA", "gwB")}


def sa_packets(table, d, spi):
    assert (d, spi) in table, "SA %s 0x%x missing: %s" % (d, spi, sorted(table))
    return table[(d, spi)]["packets"]


def diagnostics(topo):
    """SA counters and the non-zero port counters of both gateways, for failure messages."""
    out = []
    for node in ("gwA", "gwB"):
        dp = topo.dp(node)
        try:
            glob, ports = dp.stats()
            nz = {p: {k: v for k, v in c.items() if v} for p, c in ports.items()}
            out.append("%s alive=%s SAs %s\n  ports %s\n  global %s"
                       % (node, dp.alive(), sa_table(dp), nz, glob))
        except Exception as e:  # a dead dataplane must not hide the original failure
            out.append("%s: no counters (%s)" % (node, e))
    return "\n".join(out)


def warm_up(topo):
    """Until the first reply: next hops on both gateways and hosts get resolved."""
    out = ""
    for _ in range(WARMUP_TRIES):
        got, out = topo.ping("hA", HB, count=1, wait=1)
        if got == 1:
            return
    pytest.fail("no reply from %s through the tunnel after %d tries:\n%s\n%s"
                % (HB, WARMUP_TRIES, out, diagnostics(topo)))


def wait_counters(topo, pred):
    """Counters are summed on read; give the last replies' accounting a moment."""
    deadline = time.monotonic() + COUNTER_WAIT_S
    while True:
        c = sa_counts(topo)
        if pred(c) or time.monotonic() > deadline:
            return c
        time.sleep(0.1)


SNIFFER = r'''
import json, sys
from scapy.all import AsyncSniffer, IP, UDP, raw, conf
conf.verb = 0
pattern = bytes.fromhex(sys.argv[2])
pkts = []
s = AsyncSniffer(iface=sys.argv[1], store=False, prn=lambda p: pkts.append(raw(p)))
s.start()
import time
time.sleep(0.5)
print("ready", flush=True)
sys.stdin.read()
time.sleep(0.3)
s.stop()
summary = []
for b in pkts:
    eth_type = int.from_bytes(b[12:14], "big") if len(b) >= 14 else 0
    row = {"len": len(b), "ethertype": eth_type, "clear_pattern": pattern * 2 in b}
    if eth_type == 0x0800:
        ip = IP(b[14:])
        row.update(src=ip.src, dst=ip.dst, proto=ip.proto)
        pl = bytes(ip.payload)
        if ip.proto == 50 and len(pl) >= 4:
            row["spi"] = int.from_bytes(pl[:4], "big")
        if ip.proto == 17 and len(pl) >= 12:
            row["sport"] = int.from_bytes(pl[0:2], "big")
            row["dport"] = int.from_bytes(pl[2:4], "big")
            row["spi"] = int.from_bytes(pl[8:12], "big")
    summary.append(row)
print(json.dumps(summary))
'''


class WireCapture:
    """scapy sniffers on both gateways' outside veths.

    The af_packet PMD bypasses the qdisc when it transmits, so a packet socket on a wire veth
    sees only what arrives there: gwB's sniffer sees A->B, gwA's sees B->A; together, the link.
    """

    def __init__(self, topo):
        self.procs = {}
        try:
            for node in ("gwA", "gwB"):
                p = subprocess.Popen(["ip", "netns", "exec", topo[node].name, T.PYTHON, "-c",
                                      SNIFFER, "v-outside", PING_PATTERN],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
                self.procs[node] = p
                line = p.stdout.readline()
                assert line.strip() == "ready", "sniffer in %s: %r %s" % (
                    node, line, p.stderr.read() if p.poll() is not None else "")
        except BaseException:
            self.kill()
            raise

    def finish(self):
        """{node: [frame summaries]}."""
        res = {}
        for node, p in self.procs.items():
            out, err = p.communicate(input="", timeout=30)
            assert p.returncode == 0, "sniffer in %s failed: %s" % (node, err)
            res[node] = json.loads(out.strip().splitlines()[-1])
        return res

    def kill(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()


def check_wire(frames, encap):
    """Frames seen arriving at gwB (A->B) and gwA (B->A): only ESP with the right SPIs."""
    for node, spi, src, dst in (("gwB", SPI_AB, GWA_OUT, GWB_OUT),
                                ("gwA", SPI_BA, GWB_OUT, GWA_OUT)):
        seen = frames[node]
        clear = [f for f in seen if f.get("src") in (HA, HB) or f.get("dst") in (HA, HB)
                 or f["clear_pattern"]]
        assert not clear, "cleartext host traffic on the wire at %s: %s" % (node, clear[:5])
        if encap:
            esp = [f for f in seen if f.get("proto") == IPPROTO_UDP and f.get("src") == src
                   and f.get("dst") == dst and f.get("sport") == NATT_PORT
                   and f.get("dport") == NATT_PORT and f.get("spi") == spi]
            raw_esp = [f for f in seen if f.get("proto") == IPPROTO_ESP]
            assert not raw_esp, "raw ESP on a NAT-T tunnel at %s: %s" % (node, raw_esp[:5])
        else:
            esp = [f for f in seen if f.get("proto") == IPPROTO_ESP and f.get("src") == src
                   and f.get("dst") == dst and f.get("spi") == spi]
        assert len(esp) >= PINGS, "%d ESP frames with SPI 0x%x arrived at %s (want >= %d): %s" % (
            len(esp), spi, node, PINGS, seen[:20])


def assert_counters_grew(before, after, n):
    """Both SAs of both gateways moved by at least n packets."""
    for node, out_spi, in_spi in (("gwA", SPI_AB, SPI_BA), ("gwB", SPI_BA, SPI_AB)):
        for d, spi in (("out", out_spi), ("in", in_spi)):
            grew = sa_packets(after[node], d, spi) - sa_packets(before[node], d, spi)
            assert grew >= n, "%s %s SA 0x%x counted %d packets, sent %d\nbefore %s\nafter %s" % (
                node, d, spi, grew, n, before[node], after[node])


def grew_by(before, n):
    def pred(after):
        try:
            assert_counters_grew(before, after, n)
            return True
        except AssertionError:
            return False
    return pred


def ping_through_tunnel(topo, encap):
    """Warm up, then PINGS/PINGS replies, counters on both ends, ESP only on the wire."""
    warm_up(topo)
    before = sa_counts(topo)
    cap = WireCapture(topo)
    try:
        got, out = topo.ping("hA", HB, count=PINGS, wait=1,
                             extra=("-i", "0.2", "-p", PING_PATTERN))
        frames = cap.finish()
    finally:
        cap.kill()
    assert got == PINGS, "expected %d/%d replies:\n%s\nbefore: %s\n%s" % (
        PINGS, PINGS, out, before, diagnostics(topo))
    after = wait_counters(topo, grew_by(before, PINGS))
    assert_counters_grew(before, after, PINGS)
    check_wire(frames, encap)


def assert_no_leak(topo):
    """Every mbuf back in the pool on both gateways, and both processes alive."""
    for node in ("gwA", "gwB"):
        dp = topo.dp(node)
        deadline = time.monotonic() + LEAK_WAIT_S
        while True:
            assert dp.alive(), "%s dataplane died:\n%s" % (node, dp.log_text())
            glob, _ = dp.stats()
            if glob["mbuf_in_use"] == glob["mbuf_in_use_baseline"] or \
                    time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert glob["mbuf_in_use"] == glob["mbuf_in_use_baseline"], "%s: %s" % (node, glob)


# ---------------------------------------------------------------------------------------------
# iperf3

def iperf(topo, args, duration):
    """One iperf3 client run hA -> hB against a one-shot server; returns the client's JSON."""
    return T.iperf3(topo["hB"], topo["hA"], HB, ["-4"] + list(args), duration, bind=HB)


# ---------------------------------------------------------------------------------------------
# tests (file order groups them by topology: raw GCM, NAT-T GCM, CBC + HMAC)

def test_raw_esp_gcm_ping_encrypted(tunnels):
    """Raw ESP, AES-GCM-128: hA <-> hB, SA counters on both ends, only ESP on the wire."""
    topo = gateways(tunnels, "gcm", False)
    ping_through_tunnel(topo, encap=False)


def test_iperf3_tcp_and_udp_through_tunnel(tunnels, record_property):
    """TCP for ~5 s (full-size segments, path MTU found through the tunnel) and a short UDP run
    hA -> hB cross the tunnel; throughput is reported."""
    topo = gateways(tunnels, "gcm", False)
    warm_up(topo)
    _iperf_runs(topo, record_property)
    assert_no_leak(topo)


def _iperf_runs(topo, record_property):
    before = sa_counts(topo)
    tcp = iperf(topo, [], IPERF_TCP_S)
    sent_bytes = int(tcp["end"]["sum_sent"]["bytes"])
    rcv_bps = float(tcp["end"]["sum_received"]["bits_per_second"])
    retrans = tcp["end"]["sum_sent"].get("retransmits")
    print("\niperf3 TCP hA->hB through ESP (AES-GCM-128): %.1f Mbit/s received, %d bytes sent,"
          " %s retransmits" % (rcv_bps / 1e6, sent_bytes, retrans))
    record_property("tcp_mbit_s", round(rcv_bps / 1e6, 1))
    assert rcv_bps > 0 and sent_bytes > 0, tcp["end"]
    after = sa_counts(topo)
    grew = after["gwA"][("out", SPI_AB)]["bytes"] - before["gwA"][("out", SPI_AB)]["bytes"]
    assert grew >= sent_bytes, "gwA's outbound SA counted %d bytes, iperf3 sent %d" % (
        grew, sent_bytes)

    udp = iperf(topo, ["-u", "-b", IPERF_UDP_RATE, "-l", str(IPERF_UDP_LEN)], IPERF_UDP_S)
    s = udp["end"]["sum"]
    print("iperf3 UDP hA->hB through ESP: %.1f Mbit/s offered, %d/%d datagrams lost (%.2f %%)"
          % (float(s["bits_per_second"]) / 1e6, int(s["lost_packets"]), int(s["packets"]),
             float(s["lost_percent"])))
    record_property("udp_lost_percent", float(s["lost_percent"]))
    assert int(s["packets"]) > 0, s
    assert int(s["packets"]) - int(s["lost_packets"]) > 0, "no UDP datagram arrived: %s" % s
    assert float(s["lost_percent"]) <= IPERF_UDP_MAX_LOSS_PCT, s


def _rekey(topo, errors):
    """Make-before-break on both gateways; called while a flow runs."""
    try:
        gwA, gwB = topo.dp("gwA"), topo.dp("gwB")
        # 1. new inbound SAs on both sides (each can now receive the successor SPI)
        gwA.ctl(*sa_pair_lines("gcm", False, GWA_OUT, GWB_OUT, SPI_AB_NEW, SPI_BA_NEW,
                               1, 2, gen=1)[1].split())
        gwB.ctl(*sa_pair_lines("gcm", False, GWB_OUT, GWA_OUT, SPI_BA_NEW, SPI_AB_NEW,
                               2, 1, gen=1)[1].split())
        # 2. new outbound SAs, then rebind the outbound policies (the switch)
        gwA.ctl(*sa_pair_lines("gcm", False, GWA_OUT, GWB_OUT, SPI_AB_NEW, SPI_BA_NEW,
                               1, 2, gen=1)[0].split())
        gwB.ctl(*sa_pair_lines("gcm", False, GWB_OUT, GWA_OUT, SPI_BA_NEW, SPI_AB_NEW,
                               2, 1, gen=1)[0].split())
        for dp, lnet, rnet, spi_out, spi_in in ((gwA, NET_A, NET_B, SPI_AB_NEW, SPI_BA_NEW),
                                                (gwB, NET_B, NET_A, SPI_BA_NEW, SPI_AB_NEW)):
            dp.ctl(*policy_lines(lnet, rnet, spi_out, spi_in, replace=True)[0].split())
        # 3. inbound policies name the new inbound SAs
        for dp, lnet, rnet, spi_out, spi_in in ((gwA, NET_A, NET_B, SPI_AB_NEW, SPI_BA_NEW),
                                                (gwB, NET_B, NET_A, SPI_BA_NEW, SPI_AB_NEW)):
            dp.ctl(*policy_lines(lnet, rnet, spi_out, spi_in, replace=True)[1].split())
        # 4. the old SAs must have gone quiet before they are deleted
        time.sleep(REKEY_DRAIN_S)
        quiet0 = sa_counts(topo)
        time.sleep(REKEY_DRAIN_S)
        quiet1 = sa_counts(topo)
        errors.append(("quiet", quiet0, quiet1))
        gwA.ctl("sa", "del", "dst", GWB_OUT, "proto", "esp", "spi", "0x%x" % SPI_AB)
        gwA.ctl("sa", "del", "dst", GWA_OUT, "proto", "esp", "spi", "0x%x" % SPI_BA)
        gwB.ctl("sa", "del", "dst", GWA_OUT, "proto", "esp", "spi", "0x%x" % SPI_BA)
        gwB.ctl("sa", "del", "dst", GWB_OUT, "proto", "esp", "spi", "0x%x" % SPI_AB)
    except Exception as e:  # reported by the test thread
        errors.append(("error", e))


def test_rekey_make_before_break_under_flow(tunnels):
    """New SAs added, policies rebound, old SAs deleted while pings flow every 10 ms: 0 lost."""
    topo = gateways(tunnels, "gcm", False)
    warm_up(topo)
    before = sa_counts(topo)
    results = []
    timer = threading.Timer(REKEY_AFTER_S, _rekey, args=(topo, results))
    timer.start()
    try:
        got, out = topo.ping("hA", HB, count=REKEY_PINGS, wait=1,
                             extra=("-i", REKEY_INTERVAL, "-q"), timeout=120)
    finally:
        timer.cancel()
        timer.join()
    errs = [r[1] for r in results if r[0] == "error"]
    assert not errs, "rekey commands failed: %s" % errs
    assert results, "the rekey did not run"
    assert got == REKEY_PINGS and " 0% packet loss" in out, \
        "lost packets across the rekey:\n%s\nbefore: %s\nrekey: %s\n%s" % (
            out, before, results, diagnostics(topo))

    after = wait_counters(topo, lambda c: True)
    # the old SAs are gone from both gateways ...
    for node in ("gwA", "gwB"):
        old = [k for k in after[node] if k[1] in (SPI_AB, SPI_BA)]
        assert not old, "%s still has old SAs %s" % (node, old)
    # ... they carried the start of the flow and had stopped before they were deleted ...
    _, quiet0, quiet1 = next(r for r in results if r[0] == "quiet")
    for node, out_spi, in_spi in (("gwA", SPI_AB, SPI_BA), ("gwB", SPI_BA, SPI_AB)):
        for d, spi in (("out", out_spi), ("in", in_spi)):
            carried = sa_packets(quiet0[node], d, spi) - sa_packets(before[node], d, spi)
            assert carried > 0, "%s old %s SA 0x%x carried nothing" % (node, d, spi)
            assert sa_packets(quiet1[node], d, spi) == sa_packets(quiet0[node], d, spi), \
                "%s old %s SA 0x%x still counting after the switch: %s -> %s" % (
                    node, d, spi, quiet0[node][(d, spi)], quiet1[node][(d, spi)])
    print("\nrekey under ping -i %s -c %d: %d/%d replies; gwA old out SA 0x%x carried %d, new out"
          " SA 0x%x %d" % (REKEY_INTERVAL, REKEY_PINGS, got, REKEY_PINGS, SPI_AB,
                          sa_packets(quiet1["gwA"], "out", SPI_AB)
                          - sa_packets(before["gwA"], "out", SPI_AB),
                          SPI_AB_NEW, sa_packets(after["gwA"], "out", SPI_AB_NEW)))
    # ... and the new ones carried the rest, in both directions.
    for node, out_spi, in_spi in (("gwA", SPI_AB_NEW, SPI_BA_NEW),
                                  ("gwB", SPI_BA_NEW, SPI_AB_NEW)):
        for d, spi in (("out", out_spi), ("in", in_spi)):
            n = sa_packets(after[node], d, spi)
            assert n >= REKEY_MIN_NEW, "%s new %s SA 0x%x carried only %d packets" % (
                node, d, spi, n)
            assert not any(after[node][(d, spi)]["drops"].values()), after[node][(d, spi)]
    got, out = topo.ping("hA", HB, count=3, wait=1)
    assert got == 3, "no traffic on the new SAs after the rekey:\n%s" % out


def test_oversized_df_packet_signals_pmtu(tunnels):
    """A DF packet too big once encrypted gets ICMP "fragmentation needed" back from gwA,
    and hA's kernel then knows a path MTU to hB that leaves room for ESP."""
    topo = gateways(tunnels, "gcm", False)
    warm_up(topo)
    # forget what earlier traffic (iperf3) taught hA, so gwA must signal it again
    topo["hA"].ip("route", "flush", "cache")
    assert "mtu" not in topo["hA"].ip("route", "get", HB).stdout
    size = WIRE_MTU - 28  # ICMP payload for a 1500-byte inner packet
    _, out = topo.ping("hA", HB, count=2, wait=1, extra=("-s", str(size), "-M", "do"))
    assert re.search(r"Frag needed and DF set \(mtu = \d+\)", out), \
        "no frag-needed for a 1500-byte DF packet:\n%s\n%s" % (out, diagnostics(topo))
    route = topo["hA"].ip("route", "get", HB).stdout
    m = re.search(r"mtu (\d+)", route)
    assert m and int(m.group(1)) < WIRE_MTU - ESP_MIN_OVERHEAD + 1, \
        "hA learned no path MTU to %s: %s" % (HB, route)
    # what fits the learned MTU crosses the tunnel
    fit = int(m.group(1)) - 28
    got, out = topo.ping("hA", HB, count=3, wait=1, extra=("-s", str(fit), "-M", "do"))
    assert got == 3, "a %d-byte packet (learned MTU) did not cross:\n%s" % (fit + 28, out)
    topo["hA"].ip("route", "flush", "cache", check=False)


def test_no_mbuf_leak_after_esp_traffic(tunnels):
    """After ping, iperf3 and the rekey: every mbuf is back and both dataplanes live."""
    topo = gateways(tunnels, "gcm", False)
    time.sleep(0.5)
    assert_no_leak(topo)


def test_natt_gcm_ping_encrypted(tunnels):
    """ESP in UDP 4500 on all four SAs: hA <-> hB, counters, only UDP 4500 on the wire."""
    topo = gateways(tunnels, "gcm", True)
    table = sa_table(topo.dp("gwA"))
    assert all(v["encap"] for v in table.values()), table
    ping_through_tunnel(topo, encap=True)
    assert_no_leak(topo)


def test_natt_iperf3_tcp(tunnels):
    """A short iperf3 TCP run hA -> hB over the NAT-T tunnel: over 1 MB arrives, and gwA's
    outbound SA counted at least those bytes."""
    topo = gateways(tunnels, "gcm", True)
    warm_up(topo)
    before = sa_counts(topo)
    tcp = iperf(topo, [], NATT_IPERF_TCP_S)
    rcv_bytes = int(tcp["end"]["sum_received"]["bytes"])
    rcv_bps = float(tcp["end"]["sum_received"]["bits_per_second"])
    print("\niperf3 TCP hA->hB through ESP-in-UDP (AES-GCM-128): %.1f Mbit/s, %d bytes received"
          % (rcv_bps / 1e6, rcv_bytes))
    assert rcv_bytes > NATT_IPERF_MIN_BYTES, "only %d bytes crossed the NAT-T tunnel: %s\n%s" % (
        rcv_bytes, tcp["end"]["sum_received"], diagnostics(topo))
    after = sa_counts(topo)
    grew = after["gwA"][("out", SPI_AB)]["bytes"] - before["gwA"][("out", SPI_AB)]["bytes"]
    assert grew >= rcv_bytes, "gwA's outbound SA counted %d bytes, iperf3 received %d" % (
        grew, rcv_bytes)
    assert after["gwA"][("out", SPI_AB)]["encap"], after["gwA"]
    assert_no_leak(topo)


def _flush_wire(frames):
    """Frames gwB saw arriving from gwA (A->B): (ESP from gwA, hA->hB cleartext)."""
    seen = frames["gwB"]
    esp = [f for f in seen if f.get("src") == GWA_OUT and (
        f.get("proto") == IPPROTO_ESP
        or (f.get("proto") == IPPROTO_UDP and NATT_PORT in (f.get("sport"), f.get("dport"))))]
    clear = [f for f in seen if f.get("src") == HA and f.get("dst") == HB]
    return esp, clear


def test_natt_flush_under_traffic(tunnels):
    """`policy flush` then `sa flush` on gwA during a continuous ping: gwA lives on with empty
    tables, stops emitting ESP (hA's packets now leave in clear, and gwB refuses them), no mbuf
    leaks; re-adding the SAs (sequence numbers resumed, as dpsec-ike does) and policies
    restores the tunnel."""
    topo = gateways(tunnels, "gcm", True)
    gwA = topo.dp("gwA")
    warm_up(topo)
    before = sa_counts(topo)
    flow = {}

    def pinger():
        flow["got"], flow["out"] = topo.ping("hA", HB, count=FLUSH_PINGS, wait=1,
                                             extra=("-i", FLUSH_INTERVAL, "-q"), timeout=60)

    th = threading.Thread(target=pinger)
    th.start()
    cap = None
    try:
        time.sleep(FLUSH_AFTER_S)
        during = sa_counts(topo)
        gwA.ctl("policy", "flush")
        # no policy names the SA now: its sequence number no longer moves
        last_seq = int(next(s for s in gwA.ctl_json("show", "sa").get("sas", [])
                            if int(s["sa"]["spi"]) == SPI_AB).get("seq_out", 0))
        gwA.ctl("sa", "flush")
        assert gwA.alive(), "gwA died on flush:\n%s" % gwA.log_text()
        sas = gwA.ctl_json("show", "sa").get("sas", [])
        pols = gwA.ctl_json("show", "policy").get("policies", [])
        assert sas == [] and pols == [], "after flush gwA still has SAs %s policies %s" % (
            sas, pols)
        time.sleep(0.2)  # packets already in flight
        cap = WireCapture(topo)
        time.sleep(FLUSH_WATCH_S)
        frames = cap.finish()
    finally:
        if cap is not None:
            cap.kill()
        th.join()
    assert_counters_grew(before, during, 10)  # the flow was encrypted before the flush
    esp, clear = _flush_wire(frames)
    assert not esp, "gwA still emits ESP after the flush: %s" % esp[:5]
    assert len(clear) >= 10, "hA->hB traffic did not reach the wire in clear (%d frames): %s" % (
        len(clear), frames["gwB"][:10])
    got = flow["got"]
    assert 0 < got < FLUSH_PINGS - 10, "%d/%d replies across the flush:\n%s" % (
        got, FLUSH_PINGS, flow["out"])
    assert gwA.alive(), gwA.log_text()
    assert_no_leak(topo)

    # restore: the same SAs, gwA's outbound one resuming above its last sequence number
    lines = tunnel_config("gcm", True)["gwA"]
    lines[0] += " seq-out %d" % (last_seq + FLUSH_SEQ_MARGIN)
    for line in lines:
        gwA.ctl(*line.split())
    table = sa_table(gwA)
    assert sorted(table) == [("in", SPI_BA), ("out", SPI_AB)], table
    ping_through_tunnel(topo, encap=True)
    assert_no_leak(topo)


def test_cbc256_hmac_sha256_ping_encrypted(tunnels):
    """aes-cbc-256 + hmac-sha256-128 end to end, counters on both ends, ESP on the wire."""
    topo = gateways(tunnels, "cbc", False)
    ping_through_tunnel(topo, encap=False)
    assert_no_leak(topo)
