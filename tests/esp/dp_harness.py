# SPDX-License-Identifier: BSD-3-Clause
"""Drive the real dpsec-dataplane with net_pcap wire ports for exact packet tests.

Two ways to feed a run, both inside a fresh ``dpt-*`` network namespace (so the TAPs
dp-inside / dp-outside never clash with other tests) and both writing what the dataplane
transmits on its wire ports to pcap files:

* ``PcapGateway``: ``rx_pcap`` files, read once from the start. The run waits until the
  ports' rx counters reach the number of input frames, checks that every mbuf went back
  to the pool, stops the dataplane (SIGTERM flushes the tx pcaps) and returns a
  ``RunResult``.
* ``LiveGateway``: ``rx_iface_in`` on a veth whose peer the test injects into whenever it
  wants (after a ``Monitor`` has subscribed to events, for instance), paced if needed.

net_pcap gives its ports the fixed MACs 02:70:63:61:70:<port> (checked at start).
"""

import json
import os
import secrets
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "netns"))
import topo as T  # noqa: E402

from scapy.all import Ether, rdpcap  # noqa: E402

PEER_MAC = {0: "02:00:00:00:00:01", 1: "02:00:00:00:00:02"}  # static neighbours
LOG_TAIL_LINES = 120
RX_TIMEOUT = 20.0
SETTLE_TIMEOUT = 5.0
DLT_EN10MB = 1


def pcap_mac(port):
    return "02:70:63:61:70:%02x" % port


def base_config(extra=()):
    """The test gateway: 10.1.0.1 inside, 192.0.2.1 outside, peers as static neighbours."""
    lines = ["port 0 name inside", "port 1 name outside",
             "addr add 10.1.0.1/24 dev inside", "addr add 192.0.2.1/24 dev outside",
             "neigh add 192.0.2.2 lladdr %s dev outside" % PEER_MAC[1],
             "neigh add 10.1.0.2 lladdr %s dev inside" % PEER_MAC[0],
             "route add 10.2.0.0/24 via 192.0.2.2 dev outside"]
    return "\n".join(lines + list(extra)) + "\n"


def write_pcap(path, frames):
    """Frames (bytes) as a classic pcap; an empty list still gives a valid file."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, DLT_EN10MB))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", 1, i, len(fr), len(fr)))
            f.write(fr)


def tail(text, n=LOG_TAIL_LINES):
    return "\n".join(text.splitlines()[-n:])


def sa_by_spi(reply, spi):
    for s in reply.get("sas", []):
        if int(s["sa"]["spi"]) == spi:
            return s
    return None


def sa_drops(sa_info):
    return T.counters(sa_info.get("drops"))


def kernel_snmp(ns):
    """/proc/net/snmp of @ns (what its kernel did with what came up the TAPs)."""
    lines = ns.exec(["cat", "/proc/net/snmp"]).stdout.splitlines()
    out = {}
    for names, values in zip(lines[::2], lines[1::2]):
        proto, _, names = names.partition(":")
        out[proto] = dict(zip(names.split(), (int(v) for v in values.split(":")[1].split())))
    return out


class RunResult:
    """What a stopped run left: output frames per port, counters, SAs, events, log."""

    def __init__(self):
        self.out = {0: [], 1: []}
        self.glob = {}
        self.ports = {}
        self.sas = {}
        self.mbuf = (None, None)
        self.log = ""
        self.exit_code = None
        self.events = []
        self.snmp = {}  # the namespace's kernel counters: {"Ip": {"ReasmOKs": n, ...}, ...}

    def why(self, msg):
        """An assertion message with the dataplane's log tail."""
        return "%s\n--- dataplane log (tail) ---\n%s" % (msg, tail(self.log))

    def port(self, name):
        return self.ports[name]

    def drops(self, name):
        """Non-zero drop_* counters of one port."""
        return {k: v for k, v in self.ports[name].items() if k.startswith("drop_") and v}


class _Gateway:
    def __init__(self, config_text, vdevs, tag_kind, workers=1):
        self.tag = "%s-%s" % (tag_kind, secrets.token_hex(3))
        self.ns = None
        self.dp = None
        self.monitor = None
        try:
            self.ns = T.Netns("%s%s" % (T.NS_PREFIX, self.tag))
            self.dir_setup()
            self.dp = T.Dataplane(self.ns, config_text, [], self.tag, workers=workers)
            # The harness builds af_packet ports; ours are net_pcap, given before "--".
            i = self.dp.args.index("--")
            vd = []
            for v in vdevs(self.dp.dir):
                vd += ["--vdev", v]
            self.dp.args[i:i] = vd
            self.dp.args[self.dp.args.index("-m") + 1] = "512"
        except BaseException:
            self.close()
            raise

    def dir_setup(self):
        pass

    def log(self):
        return self.dp.log_text() if self.dp else ""

    def why(self, msg):
        return "%s\n--- dataplane log (tail) ---\n%s" % (msg, tail(self.log()))

    def start(self):
        self.dp.start()
        self.dp.wait_ready()
        ports = {p["port_id"]: p for p in self.dp.ctl_json("show", "ports").get("ports", [])}
        for i in (0, 1):
            mac = ports.get(i, {}).get("mac")
            assert mac == pcap_mac(i), self.why("port %d MAC %s, want %s" % (i, mac, pcap_mac(i)))
        return self

    def rx(self):
        _, ports = self.dp.stats()
        return ports.get("inside", {}).get("rx", 0), ports.get("outside", {}).get("rx", 0)

    def wait_rx(self, n0, n1, timeout=RX_TIMEOUT):
        deadline = time.time() + timeout
        got = None
        while time.time() < deadline:
            assert self.dp.alive(), self.why("dataplane died")
            got = self.rx()
            if got[0] >= n0 and got[1] >= n1:
                assert got == (n0, n1), self.why("rx %s, want (%d, %d)" % (got, n0, n1))
                return
            time.sleep(0.05)
        raise AssertionError(self.why("rx counters %s never reached (%d, %d)" % (got, n0, n1)))

    def settle(self):
        """Wait until the counters stop moving and every mbuf is back; return (used, base)."""
        deadline = time.time() + SETTLE_TIMEOUT
        prev = None
        g = {}
        while time.time() < deadline:
            g, ports = self.dp.stats()
            snap = (json.dumps(ports, sort_keys=True), g.get("mbuf_in_use"))
            if snap == prev and g.get("mbuf_in_use") == g.get("mbuf_in_use_baseline"):
                break
            prev = snap
            time.sleep(0.15)
        return g.get("mbuf_in_use"), g.get("mbuf_in_use_baseline")

    def collect(self, res):
        """Counters and SAs into @res (the dataplane still running)."""
        res.mbuf = self.settle()
        res.glob, res.ports = self.dp.stats()
        for s in self.dp.ctl_json("show", "sa").get("sas", []):
            res.sas[int(s["sa"]["spi"])] = s
        res.snmp = kernel_snmp(self.ns)

    def stop(self, res):
        if self.monitor is not None:
            res.events = self.monitor.stop()
            self.monitor = None
        if self.dp is not None:
            self.dp.stop()
            res.exit_code = self.dp.proc.returncode if self.dp.proc else None
            res.log = self.dp.log_text()
        for port in (0, 1):
            # one file per TX queue (worker) with several workers, queue 0 first
            for q in range(8):
                path = os.path.join(self.dp.dir, "OUT%d%s.pcap" % (port, "_q%d" % q if q else ""))
                if os.path.exists(path) and os.path.getsize(path) > 24:
                    res.out[port] += [Ether(bytes(p)) for p in rdpcap(path)]

    def close(self):
        if self.monitor is not None:
            self.monitor.stop()
            self.monitor = None
        if self.dp is not None:
            try:
                self.dp.stop()
            finally:
                self.dp.cleanup_dir()
        if self.ns is not None:
            self.ns.delete()
        T.remove_dpdk_files("dpt-" + self.tag)


class PcapGateway(_Gateway):
    """Feed IN0/IN1 pcaps once; run() returns a RunResult with everything checked after.
    With workers > 1, in0 and in1 are lists of per-queue frame lists (RX queue q is worker
    q's) and every port has one TX pcap per worker."""

    def __init__(self, config_text, in0, in1, workers=1):
        queues = [list(in0), list(in1)] if workers > 1 else [[in0], [in1]]
        for qs in queues:
            assert 1 <= len(qs) <= workers, "one frame list per RX queue, at most one per worker"
        self.n_in = tuple(sum(len(f) for f in qs) for qs in queues)

        def vdevs(d):
            devs = []
            for port, qs in enumerate(queues):
                args = []
                for q, frames in enumerate(qs):
                    name = "%s/IN%d%s.pcap" % (d, port, "_q%d" % q if q else "")
                    write_pcap(name, [bytes(f) for f in frames])
                    args.append("rx_pcap=" + name)
                args += ["tx_pcap=%s/OUT%d%s.pcap" % (d, port, "_q%d" % q if q else "")
                         for q in range(workers)]
                devs.append("net_pcap%d,%s" % (port, ",".join(args)))
            return devs

        super().__init__(config_text, vdevs, "esp", workers)

    def run(self):
        res = RunResult()
        try:
            self.start()
            self.wait_rx(*self.n_in)
            self.collect(res)
            self.stop(res)
        except BaseException as e:
            if isinstance(e, AssertionError):
                raise
            raise AssertionError(self.why("run failed: %r" % e)) from e
        finally:
            self.close()
        return res


INJECT = r'''
import json, socket, sys, time
frames = json.load(sys.stdin)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
gap = float(sys.argv[2])
for i, h in enumerate(frames):
    if i and gap:
        time.sleep(gap)
    s.send(bytes.fromhex(h))
print(len(frames))
'''


class LiveGateway(_Gateway):
    """Wire ports read veths v0/v1 live; inject(port, frames) sends on their peers w0/w1."""

    def __init__(self, config_text):
        def vdevs(d):
            for p in (0, 1):
                self.ns.ip("link", "add", "v%d" % p, "type", "veth", "peer", "name", "w%d" % p)
                for ifn in ("v%d" % p, "w%d" % p):
                    self.ns.ip("link", "set", ifn, "arp", "off")
                    self.ns.ip("link", "set", ifn, "up")
            return ["net_pcap%d,rx_iface_in=v%d,tx_pcap=%s/OUT%d.pcap" % (p, p, d, p)
                    for p in (0, 1)]

        super().__init__(config_text, vdevs, "live")
        self.sent = [0, 0]

    def inject(self, port, frames, gap=0.0):
        frames = [bytes(f) for f in frames]
        p = self.ns.exec([T.PYTHON, "-c", INJECT, "w%d" % port, str(gap)],
                         input=json.dumps([f.hex() for f in frames]), timeout=60)
        assert int(p.stdout.strip()) == len(frames)
        self.sent[port] += len(frames)

    def wait_sent(self):
        self.wait_rx(*self.sent)

    def start_monitor(self):
        self.monitor = Monitor(self.dp.ctl_ep)
        self.monitor.wait_hello()
        return self.monitor

    def finish(self):
        """Counters, SAs, events, output frames; always cleans up."""
        res = RunResult()
        try:
            self.wait_sent()
            self.collect(res)
            if self.monitor is not None:
                time.sleep(0.3)  # a late duplicate event would show up by now
            self.stop(res)
        finally:
            self.close()
        return res


class Monitor:
    """`dpsecctl --json monitor` in the background; events with their arrival time."""

    def __init__(self, endpoint):
        self.proc = subprocess.Popen([T.DPSECCTL, "--ctl", endpoint, "--json", "monitor"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            line = line.strip()
            if not line:
                continue
            with self.lock:
                self.lines.append((time.time(), json.loads(line)))

    def events(self, kind=None):
        with self.lock:
            evs = [(t, e) for t, e in self.lines if kind is None or kind in e]
        return evs

    def wait(self, kind, count=1, timeout=5.0, pred=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            evs = [(t, e) for t, e in self.events(kind) if pred is None or pred(e)]
            if len(evs) >= count:
                return evs
            time.sleep(0.02)
        return [(t, e) for t, e in self.events(kind) if pred is None or pred(e)]

    def wait_hello(self, timeout=10.0):
        if not self.wait("hello", 1, timeout):
            raise AssertionError("monitor saw no hello: %s" % self.proc.stderr)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.thread.join(timeout=2)
        return [e for _, e in self.events()]


def as_text(v):
    return T.norm_addr(v)


__all__ = ["PcapGateway", "LiveGateway", "RunResult", "base_config", "pcap_mac", "PEER_MAC",
           "sa_by_spi", "sa_drops", "as_text"]
