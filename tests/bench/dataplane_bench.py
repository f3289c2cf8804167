"""One dataplane benchmark case: start dpsec-dataplane on pcap/null vdevs, read port counters.

ENCRYPT: port 0 = net_pcap (plaintext looped, infinite_rx), port 1 = net_null (no-rx).
DECRYPT: port 0 = net_null (no-rx), port 1 = net_pcap (ESP looped).
Mpps = tx counter of the output port read every second over a fixed window after a
warm-up: the median of the per-second rates (the window mean is kept too).
Every instance runs in a private netns (its TAPs dp-inside/dp-outside clash with nothing)
with its own --file-prefix, whose hugepage files are removed when it stops.
"""

import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATAPLANE = os.environ.get("BENCH_DATAPLANE", os.path.join(REPO, "build/dpsec-dataplane"))
DPSECCTL = os.path.join(REPO, "build/dpsecctl")
HUGE_DIR = "/dev/hugepages"
READY_TIMEOUT = 120.0  # 10k SAs + 10k policies are applied before the ctl socket answers
STOP_TIMEOUT = 10.0
MBUFS = 32768          # the looped pcap (up to 12000 frames) is held in mbufs by net_pcap
MEM_MB = 512


def run(args, check=True, timeout=60):
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError("%s -> %d\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
    return p


def remove_dpdk_files(prefix):
    for f in glob.glob(os.path.join(HUGE_DIR, prefix + "*")):
        try:
            os.unlink(f)
        except OSError:
            pass
    shutil.rmtree(os.path.join("/var/run/dpdk", prefix), ignore_errors=True)


class Netns:
    def __init__(self, name):
        self.name = name
        run(["ip", "netns", "add", name])
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        for k in ("all", "default"):
            run(["ip", "netns", "exec", name, "sysctl", "-q", "-w",
                 "net.ipv6.conf.%s.disable_ipv6=1" % k])

    def delete(self):
        p = run(["ip", "netns", "pids", self.name], check=False)
        for pid in (int(x) for x in p.stdout.split()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        run(["ip", "netns", "del", self.name], check=False)


def vdevs(direction, pcap_in, pcap_out=None, empty_pcap=None):
    """--vdev args in port order. pcap_out: write the output port to a pcap (verification)."""
    src = "rx_pcap=%s" % pcap_in + ("" if pcap_out else ",infinite_rx=1")
    if pcap_out:
        sink = "net_pcap%d,rx_pcap=%s,tx_pcap=%s"
    else:
        sink = "net_null%d,no-rx=1"
    if direction == "encrypt":
        devs = ["net_pcap0," + src, (sink % ((1, empty_pcap, pcap_out) if pcap_out else (1,)))]
    else:
        devs = [(sink % ((0, empty_pcap, pcap_out) if pcap_out else (0,))), "net_pcap1," + src]
    out = []
    for d in devs:
        out += ["--vdev", d]
    return out


def stop_process(proc):
    """SIGTERM, then SIGKILL after STOP_TIMEOUT s; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)
    return proc.returncode


def sample(read, tx, warmup, window):
    """After @warmup s, read() once a second for @window s; tx(snapshot) is the output
    port's packet counter. One-second samples: on a shared machine the median resists
    other tenants' bursts. Returns (first snapshot, last, sorted pps samples, t0, t1)."""
    time.sleep(warmup)
    first, t0 = read(), time.monotonic()
    prev, tprev, samples = first, t0, []
    n = max(1, int(round(window)))
    for _ in range(n):
        time.sleep(window / n)
        cur, tcur = read(), time.monotonic()
        samples.append((tx(cur) - tx(prev)) / (tcur - tprev))
        prev, tprev = cur, tcur
    samples.sort()
    return first, prev, samples, t0, tprev


class Dataplane:
    def __init__(self, ns, tag, config_text, vdev_args, workdir, extra=()):
        self.ns = ns
        self.dir = tempfile.mkdtemp(prefix="dpb-", dir=workdir)
        self.ctl_ep = "ipc://%s/ctl.sock" % self.dir
        self.prefix = "dpb-%s" % tag
        self.log = os.path.join(self.dir, "dataplane.log")
        conf = os.path.join(self.dir, "dpsec.conf")
        with open(conf, "w") as f:
            f.write(config_text)
        self.args = (["ip", "netns", "exec", ns.name, DATAPLANE, "-l", "0,1", "--no-pci",
                      "--file-prefix", self.prefix, "--huge-dir", HUGE_DIR, "-m", str(MEM_MB)]
                     + vdev_args
                     + ["--", "--config", conf, "--ctl", self.ctl_ep, "--idle-sleep-us", "0",
                        "--mbufs", str(MBUFS)] + list(extra))
        self.proc = None
        self.exit_code = None

    def start(self):
        with open(self.log, "w") as logf:
            self.proc = subprocess.Popen(self.args, stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = time.time() + READY_TIMEOUT
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("dataplane exited (%d) before ready:\n%s"
                                   % (self.proc.returncode, self.log_tail()))
            if run([DPSECCTL, "--ctl", self.ctl_ep, "show", "ports"], check=False,
                   timeout=10).returncode == 0:
                return self
            time.sleep(0.2)
        raise RuntimeError("dataplane not ready after %.0f s:\n%s" % (READY_TIMEOUT,
                                                                      self.log_tail()))

    def ports(self):
        """{port name: {"mac":.., "counters": {name: value}}} from `show ports --json`."""
        p = run([DPSECCTL, "--ctl", self.ctl_ep, "--json", "show", "ports"], timeout=10)
        out = {}
        for e in json.loads(p.stdout).get("ports", []):
            out[e["name"]] = {"mac": e.get("mac"), "driver": e.get("driver"),
                              "counters": {c["name"]: int(c.get("value", 0))
                                           for c in e.get("counters", [])}}
        return out

    def log_tail(self, n=2000):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None:
            self.exit_code = stop_process(self.proc)
        remove_dpdk_files(self.prefix)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def discover_mac(ns, tag, direction, pcap, workdir, vdev_args=None):
    """The MAC of the input port in a direction's vdev layout (net_pcap's is deterministic:
    02:70:63:61:70 and a per-driver counter, so it depends on the layout)."""
    conf = "port 0 name inside\nport 1 name outside\n"
    dp = Dataplane(ns, tag, conf, vdev_args or vdevs(direction, pcap), workdir)
    try:
        dp.start()
        return dp.ports()["inside" if direction == "encrypt" else "outside"]["mac"]
    finally:
        dp.stop()
        dp.cleanup()


def measure(ns, tag, direction, config_text, pcap, workdir, warmup, window, extra=()):
    """Run one case; returns a dict with pps and the counters seen. @extra: more
    dataplane options (e.g. --crypto cpu)."""
    out_port = "outside" if direction == "encrypt" else "inside"
    in_port = "inside" if direction == "encrypt" else "outside"
    dp = Dataplane(ns, tag, config_text, vdevs(direction, pcap), workdir, extra)
    t_start = time.time()
    try:
        dp.start()
        ready_s = time.time() - t_start
        p0, p1, samples, t0, t1 = sample(dp.ports,
                                         lambda p: p[out_port]["counters"].get("tx", 0),
                                         warmup, window)
    except Exception:
        dp.stop()
        print(dp.log_tail())
        raise
    dp.stop()
    log = dp.log_tail(4000)
    dp.cleanup()
    delta = {}
    for port in (in_port, out_port):
        c0, c1 = p0[port]["counters"], p1[port]["counters"]
        delta[port] = {k: c1[k] - c0.get(k, 0) for k in c1 if c1[k] - c0.get(k, 0)}
    tx = delta[out_port].get("tx", 0)
    rx = delta[in_port].get("rx", 0)
    return {"pps": samples[len(samples) // 2], "mean_pps": tx / (t1 - t0),
            "samples_pps": [round(x) for x in samples], "rx_pps": rx / (t1 - t0), "window_s": t1 - t0,
            "ready_s": round(ready_s, 2), "counters": delta, "exit_code": dp.exit_code,
            "log_tail": log if dp.exit_code not in (0, None) else ""}


def capture(ns, tag, direction, config_text, pcap_in, empty_pcap, workdir, settle=3.0):
    """Short non-looped run with the output port written to a pcap; returns its path."""
    out = os.path.join(workdir, "capture-%s.pcap" % direction)
    dp = Dataplane(ns, tag, config_text, vdevs(direction, pcap_in, out, empty_pcap), workdir)
    try:
        dp.start()
        time.sleep(settle)
        counters = dp.ports()
    finally:
        dp.stop()
        dp.cleanup()
    return out, counters, dp.exit_code
