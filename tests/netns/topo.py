"""Network-namespace test topology for dpsec (DESIGN.md "Test topology").

    hA 10.1.0.2 --veth-- gwA --veth 192.0.2.0/24-- gwB --veth-- hB 10.2.0.2

Every namespace is named ``dpt-<suffix>-<node>`` so leftovers from a crashed run can be
found and removed (tests/run.sh does that at start). A dpsec gateway's namespace holds its
two wire veths without kernel addresses; dpsec-dataplane drives them through
``net_af_packet`` vdevs and creates the TAPs ``dp-inside`` / ``dp-outside`` that carry the
addresses. A kernel gateway is a plain Linux router whose veths are named like those TAPs,
so tests that only touch ``dp-*`` interfaces run unchanged against either kind.

DPT_GWA_KERNEL=1 makes gwA a kernel router: a self-test of this harness and of the tests'
IP logic for when no dataplane is built.
"""

import base64
import glob
import ipaddress
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PYTHON = "/usr/bin/python3"  # Debian's, which has scapy; not whatever is first on PATH
DATAPLANE = os.environ.get("DPT_DATAPLANE", os.path.join(REPO, "build/san/dpsec-dataplane"))
DPSECCTL = os.environ.get("DPT_DPSECCTL", os.path.join(REPO, "build/dpsecctl"))
HUGE_DIR = "/dev/hugepages"
DPDK_RUN_DIR = "/var/run/dpdk"
NS_PREFIX = "dpt-"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0


class CmdError(Exception):
    pass


def run(args, check=True, timeout=60, input=None):
    """Run a command (list of words); return CompletedProcess with text output."""
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, input=input)
    if check and p.returncode != 0:
        raise CmdError("%s -> exit %d\nstdout: %s\nstderr: %s"
                       % (" ".join(args), p.returncode, p.stdout, p.stderr))
    return p


def iperf3(server_ns, client_ns, dst, args=(), duration=3, bind=None, listen_timeout=10.0):
    """One iperf3 run client_ns -> dst against a one-shot server in server_ns, started and
    listening before the client connects; returns the client's JSON ("end" included).
    Raises AssertionError with both sides' output when the run fails."""
    srv_args = ["iperf3", "-s", "-1"] + (["-B", bind] if bind else [])
    srv = subprocess.Popen(["ip", "netns", "exec", server_ns.name] + srv_args,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + listen_timeout
        while True:
            ss = server_ns.exec(["ss", "-Hltn", "sport", "=", ":5201"], check=False)
            if ":5201" in ss.stdout:
                break
            assert srv.poll() is None, "iperf3 server exited: %s" % srv.stdout.read()
            assert time.time() < deadline, "iperf3 server not listening after %.0f s" \
                % listen_timeout
            time.sleep(0.05)
        p = client_ns.exec(["iperf3", "-c", dst, "-J", "-t", str(duration),
                            "--connect-timeout", "3000"] + list(args), check=False,
                           timeout=duration + 30)
        try:
            res = json.loads(p.stdout)
        except ValueError:
            res = {"error": "no JSON"}
        if p.returncode != 0 or "error" in res:
            srv.kill()
            raise AssertionError("iperf3 -c %s %s failed (exit %d): %s %s\nserver: %s"
                                 % (dst, " ".join(args), p.returncode, res.get("error"),
                                    p.stderr[-1000:], srv.communicate()[0][-1000:]))
        return res
    finally:
        if srv.poll() is None:
            try:
                srv.wait(timeout=5)  # a one-shot server ends after its client
            except subprocess.TimeoutExpired:
                srv.kill()
        srv.wait()


def kernel_gwa_requested():
    return os.environ.get("DPT_GWA_KERNEL", "") not in ("", "0")


def norm_addr(v):
    """An address from dpsecctl's JSON as text: accepts dotted text, base64 or a byte list."""
    if v is None:
        return None
    if isinstance(v, list):
        return str(ipaddress.ip_address(bytes(v)))
    try:
        return str(ipaddress.ip_address(v))
    except ValueError:
        raw = base64.b64decode(v, validate=True)
        return str(ipaddress.ip_address(raw))


def counters(entry):
    """{name: value} from a list of {"name":..,"value":..} (values may be JSON strings)."""
    return {c["name"]: int(c.get("value", 0)) for c in (entry or [])}


class Netns:
    def __init__(self, name, ipv6=False):
        self.name = name
        run(["ip", "netns", "add", name])
        self.ip("link", "set", "lo", "up")
        if ipv6:
            # IPv6 on, but nothing learnt from router advertisements
            self.sysctl("net.ipv6.conf.default.accept_ra", "0")
        else:
            # Quiet namespaces: no IPv6 autoconf/ND/RS traffic to disturb exact counters.
            self.sysctl("net.ipv6.conf.all.disable_ipv6", "1")
            self.sysctl("net.ipv6.conf.default.disable_ipv6", "1")

    def ip(self, *args, check=True):
        return run(["ip", "-n", self.name] + list(args), check=check)

    def exec(self, args, check=True, timeout=60, input=None):
        return run(["ip", "netns", "exec", self.name] + list(args), check=check,
                   timeout=timeout, input=input)

    def sysctl(self, key, value):
        self.exec(["sysctl", "-q", "-w", "%s=%s" % (key, value)])

    def mac(self, ifname):
        out = self.ip("-j", "link", "show", ifname).stdout
        return json.loads(out)[0]["address"]

    def pids(self):
        p = run(["ip", "netns", "pids", self.name], check=False)
        return [int(x) for x in p.stdout.split()]

    def delete(self):
        kill_pids(self.pids())
        run(["ip", "netns", "del", self.name], check=False)


def kill_pids(pids, timeout=STOP_TIMEOUT):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.time() + timeout
    for pid in pids:
        while time.time() < deadline and os.path.exists("/proc/%d" % pid):
            time.sleep(0.05)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def veth(ns_a, if_a, ns_b, if_b):
    run(["ip", "link", "add", if_a, "netns", ns_a.name, "type", "veth",
         "peer", "name", if_b, "netns", ns_b.name])
    for ns, ifname in ((ns_a, if_a), (ns_b, if_b)):
        # Like a real wire: no 64 KiB GSO frames and no half-done checksums, which a
        # packet socket (net_af_packet) would receive as they are.
        ns.exec(["ethtool", "-K", ifname, "tx", "off", "tso", "off", "gso", "off",
                 "gro", "off"], check=False)
        ns.ip("link", "set", ifname, "up")


def wire_ports(ns, ifnames):
    """Leave @ifnames to a dataplane's af_packet ports, as a NIC is left to DPDK.

    No kernel addresses, no ARP, strict reverse-path filtering: the kernel's IP stack
    answers for the TAPs' addresses on any interface (weak host). And a bridge kept
    down: its receive handler drops each frame after the packet sockets took their
    copy, before the IP stack routes it only to drop it (e2e TCP 1.11x and 1.25x in
    two interleaved rounds).
    """
    ns.ip("link", "add", "name", "wire-sink", "type", "bridge")
    for ifname in ifnames:
        ns.sysctl("net.ipv6.conf.%s.disable_ipv6" % ifname, "1")
        ns.sysctl("net.ipv4.conf.%s.rp_filter" % ifname, "1")
        ns.ip("link", "set", ifname, "arp", "off")
        ns.ip("link", "set", ifname, "master", "wire-sink")


class Dataplane:
    """One dpsec-dataplane process inside a namespace, with its config, log and ctl socket."""

    def __init__(self, ns, config_text, wire_ifaces, tag, binary=DATAPLANE, workers=1,
                 worker_cpu=1):
        self.ns = ns
        # A short private directory: ipc:// endpoints are unix sockets (path <= 107 bytes).
        self.dir = tempfile.mkdtemp(prefix="dpt-", dir="/tmp")
        self.config = os.path.join(self.dir, "dpsec.conf")
        self.log = os.path.join(self.dir, "dataplane.log")
        self.ctl_ep = "ipc://%s/ctl.sock" % self.dir
        self.file_prefix = "dpt-%s" % tag
        self.proc = None
        with open(self.config, "w") as f:
            f.write(config_text)
        # Worker lcores share this machine's two CPUs (idle sleep keeps that fair); several
        # queue pairs on af_packet are a kernel fanout by flow hash: RSS for the tests.
        lcores = ["--lcores", "0@%d,1@%d" % (1 - worker_cpu, worker_cpu)] if workers == 1 else [
            "--lcores", ",".join(["0@0"] + ["%d@%d" % (i, 1 - i % 2) for i in range(1, workers + 1)])]
        self.args = ["ip", "netns", "exec", ns.name, binary] + lcores + [
                     "--no-pci", "--file-prefix", self.file_prefix,
                     "--huge-dir", HUGE_DIR, "-m", "256"]
        for i, ifname in enumerate(wire_ifaces):
            self.args += ["--vdev", "net_af_packet%d,iface=%s%s"
                          % (i, ifname, ",qpairs=%d" % workers if workers > 1 else "")]
        self.args += ["--", "--config", self.config, "--ctl", self.ctl_ep]
        # e.g. DPT_DATAPLANE_ARGS="--idle-sleep-us 100" (benchmarks, experiments)
        self.args += os.environ.get("DPT_DATAPLANE_ARGS", "").split()

    def start(self):
        if not os.access(self.args[4], os.X_OK):
            raise AssertionError("dataplane binary %s is missing (run make san)" % self.args[4])
        logf = open(self.log, "w")
        env = dict(os.environ)
        # Sanitizer reports go to the log; a leak report alone must not hide other output.
        env.setdefault("ASAN_OPTIONS", "abort_on_error=0")
        self.proc = subprocess.Popen(self.args, stdout=logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
        logf.close()
        return self

    @property
    def pid(self):
        # `ip netns exec` execs the program, so the Popen pid is the dataplane itself.
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_exit(self, timeout):
        return self.proc.wait(timeout=timeout)

    def ctl(self, *words, check=True, timeout=10):
        """dpsecctl --ctl EP WORDS... (text output)."""
        return run([DPSECCTL, "--ctl", self.ctl_ep] + list(words), check=check, timeout=timeout)

    def ctl_json(self, *words, timeout=10):
        p = run([DPSECCTL, "--ctl", self.ctl_ep, "--json"] + list(words), timeout=timeout)
        reply = json.loads(p.stdout)
        code = reply.get("code", "OK")
        if code not in ("OK", 0):
            raise CmdError("dpsecctl %s: %s %s" % (" ".join(words), code, reply.get("reason")))
        return reply

    def wait_ready(self, timeout=READY_TIMEOUT):
        if not os.access(DPSECCTL, os.X_OK):
            raise AssertionError("%s is missing (run make)" % DPSECCTL)
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if not self.alive():
                raise AssertionError("dataplane exited with %s before it was ready:\n%s"
                                     % (self.proc.returncode, self.log_text()))
            try:
                last = self.ctl("show", "ports", check=False, timeout=5)
                if last.returncode == 0:
                    return
            except subprocess.TimeoutExpired:
                pass
            time.sleep(0.2)
        raise AssertionError("dataplane not ready after %.0f s (last dpsecctl: %s)\n%s"
                             % (timeout, last and (last.stdout + last.stderr), self.log_text()))

    def stats(self):
        """(global counters, {port name: counters}) from `show stats`."""
        st = self.ctl_json("show", "stats").get("stats", {})
        ports = {p["name"]: counters(p.get("counters")) for p in st.get("ports", [])}
        return counters(st.get("global")), ports

    def routes(self):
        out = []
        for r in self.ctl_json("show", "route").get("routes", []):
            d = r["dst"]
            out.append({"dst": "%s/%d" % (norm_addr(d["addr"]), int(d["len"])),
                        "via": norm_addr(r.get("via")), "dev": r.get("dev")})
        return out

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)
        remove_dpdk_files(self.file_prefix)

    def cleanup_dir(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def remove_dpdk_files(prefix):
    """Hugepage files and EAL runtime dir left by a --file-prefix."""
    for f in glob.glob(os.path.join(HUGE_DIR, prefix + "*")):
        try:
            os.unlink(f)
        except OSError:
            pass
    shutil.rmtree(os.path.join(DPDK_RUN_DIR, prefix), ignore_errors=True)


def tunnel_pair(k_ab, k_ba, aead="aes-gcm-128", replay=256):
    """Manual-key config lines for a gwA<->gwB tunnel between 10.1.0.0/24 and 10.2.0.0/24,
    as Topology(extra=...) takes them: SPIs 0x100 (A->B) and 0x200 (B->A)."""
    def side(me, peer, spi_out, spi_in, k_out, k_in, local, remote):
        return [
            "sa add src %s dst %s proto esp spi %s dir out mode tunnel aead %s %s"
            % (me, peer, spi_out, aead, k_out),
            "sa add src %s dst %s proto esp spi %s dir in mode tunnel aead %s %s"
            " replay-window %d" % (peer, me, spi_in, aead, k_in, replay),
            "policy add src %s dst %s dir out action protect spi %s" % (local, remote, spi_out),
            "policy add src %s dst %s dir in action protect spi %s" % (remote, local, spi_in),
        ]
    return {"gwA": side("192.0.2.1", "192.0.2.2", "0x100", "0x200", k_ab, k_ba,
                        "10.1.0.0/24", "10.2.0.0/24"),
            "gwB": side("192.0.2.2", "192.0.2.1", "0x200", "0x100", k_ba, k_ab,
                        "10.2.0.0/24", "10.1.0.0/24")}


def gateway_config(inside_addr, outside_addr, routes, extra=()):
    lines = ["port 0 name inside", "port 1 name outside",
             "addr add %s dev inside" % inside_addr,
             "addr add %s dev outside" % outside_addr]
    lines += ["route add %s via %s dev %s" % r for r in routes]
    lines += list(extra)
    return "\n".join(lines) + "\n"


class Topology:
    """The four-node topology. gwa/gwb: "dpsec" or "kernel"."""

    def __init__(self, gwa="dpsec", gwb="kernel", extra=None, workers=1, ipv6=False,
                 worker_cpus=None):
        """extra: {"gwA": [config lines], ...} appended to a dpsec gateway's config;
        workers: worker lcores (and wire queue pairs) of each dpsec gateway;
        worker_cpus: {"gwB": 0, ...} the CPU of a one-worker gateway's worker (default 1)."""
        self.tag = secrets.token_hex(3)
        self.workers = workers
        self.worker_cpus = worker_cpus or {}
        self.ipv6 = ipv6
        self.extra = extra or {}
        self.kinds = {"gwA": gwa, "gwB": gwb}
        self.ns = {}
        self.dataplanes = {}
        self.extra_ns = []
        try:
            self._build()
        except BaseException:
            self.teardown()
            raise

    def _new_ns(self, node):
        ns = Netns("%s%s-%s" % (NS_PREFIX, self.tag, node), ipv6=self.ipv6)
        self.ns[node] = ns
        return ns

    def _gateway(self, node, inside, outside, route):
        """Give a gateway its addresses: a dataplane config, or kernel addresses + forwarding."""
        ns = self.ns[node]
        if self.kinds[node] == "dpsec":
            wire_ports(ns, ("v-inside", "v-outside"))
            dp = Dataplane(ns, gateway_config(inside, outside, [route], self.extra.get(node, ())),
                           ["v-inside", "v-outside"], "%s-%s" % (self.tag, node),
                           workers=self.workers, worker_cpu=self.worker_cpus.get(node, 1))
            self.dataplanes[node] = dp
        else:
            ns.ip("addr", "add", inside, "dev", "dp-inside")
            ns.ip("addr", "add", outside, "dev", "dp-outside")
            ns.sysctl("net.ipv4.ip_forward", "1")
            ns.ip("route", "add", route[0], "via", route[1], "dev", "dp-" + route[2])

    def _build(self):
        hA, gwA, gwB, hB = (self._new_ns(n) for n in ("hA", "gwA", "gwB", "hB"))
        # Kernel gateways name their veths like the TAPs a dataplane would create.
        def wire(node, side):
            return ("v-" if self.kinds[node] == "dpsec" else "dp-") + side

        veth(hA, "eth0", gwA, wire("gwA", "inside"))
        veth(gwA, wire("gwA", "outside"), gwB, wire("gwB", "outside"))
        veth(gwB, wire("gwB", "inside"), hB, "eth0")

        hA.ip("addr", "add", "10.1.0.2/24", "dev", "eth0")
        hA.ip("route", "add", "default", "via", "10.1.0.1")
        hB.ip("addr", "add", "10.2.0.2/24", "dev", "eth0")
        hB.ip("route", "add", "default", "via", "10.2.0.1")

        self._gateway("gwA", "10.1.0.1/24", "192.0.2.1/24", ("10.2.0.0/24", "192.0.2.2", "outside"))
        self._gateway("gwB", "10.2.0.1/24", "192.0.2.2/24", ("10.1.0.0/24", "192.0.2.1", "outside"))

        for dp in self.dataplanes.values():
            dp.start()
        for dp in self.dataplanes.values():
            dp.wait_ready()

    def __getitem__(self, node):
        return self.ns[node]

    def dp(self, node):
        return self.dataplanes.get(node)

    def ping(self, node, dst, count=3, wait=1, extra=(), timeout=60):
        """ping from a node; returns (replies received, full output)."""
        p = self.ns[node].exec(["ping", "-n", "-c", str(count), "-W", str(wait)] + list(extra)
                               + [dst], check=False, timeout=timeout)
        got = 0
        for line in p.stdout.splitlines():
            if " received" in line:
                got = int(line.split(" received")[0].split(",")[-1].strip())
        return got, p.stdout + p.stderr

    def logs(self):
        return {node: dp.log_text() for node, dp in self.dataplanes.items()}

    def teardown(self):
        for dp in self.dataplanes.values():
            try:
                dp.stop()
            except Exception:
                pass
        for ns in list(self.ns.values()) + self.extra_ns:
            ns.delete()
        for dp in self.dataplanes.values():
            remove_dpdk_files(dp.file_prefix)
            dp.cleanup_dir()


def scapy_send(ns, ifname, frames, timeout=60):
    """Send raw frames (bytes) on ifname inside ns with Debian's scapy; returns how many went."""
    # The kernel refuses frames shorter than an Ethernet header and scapy then silently pads
    # them to 60 bytes, which would send something else than the test means.
    short = [f for f in frames if len(f) < 14]
    if short:
        raise ValueError("cannot inject %d frame(s) shorter than 14 bytes on a veth" % len(short))
    script = r'''
import sys, json
from scapy.all import conf
frames = [bytes.fromhex(h) for h in json.load(sys.stdin)]
s = conf.L2socket(iface=sys.argv[1])
sent = 0
for f in frames:
    s.send(f)
    sent += 1
s.close()
print(sent)
'''
    p = ns.exec([PYTHON, "-c", script, ifname], timeout=timeout,
                input=json.dumps([f.hex() for f in frames]))
    return int(p.stdout.strip().splitlines()[-1])


def cleanup_leftovers():
    """Remove every dpt-* namespace (and its processes) and dpt-* DPDK files."""
    p = run(["ip", "netns", "list"], check=False)
    for line in p.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(NS_PREFIX):
            ns = Netns.__new__(Netns)
            ns.name = name
            ns.delete()
    remove_dpdk_files(NS_PREFIX)
