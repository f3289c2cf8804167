"""End to end: iperf3 hA -> hB through two gateways, dpsec vs stock strongSwan (libipsec).

    hA 10.1.0.2 -- gwA -- 192.0.2.0/24 -- gwB -- hB 10.2.0.2

dpsec: tests/netns/topo.py Topology(gwa="dpsec", gwb="dpsec") with manual AES-128-GCM SAs,
the optimised build/dpsec-dataplane (DPT_DATAPLANE), default idle sleep (two dataplanes,
iperf3 and the kernel share 2 cores). The two gateways stand for two machines, so their
workers run on different CPUs (gwA's on CPU 1, gwB's on CPU 0); on one CPU they would take
turns by the scheduler's time slices (measured here: TCP 0.8-1.2 instead of 1.9 Gbit/s). Stock: Debian's /usr/lib/ipsec/charon with
kernel-libipsec in each gateway netns (this kernel has no ESP), each in `unshare -m` with a
tmpfs /run, its own STRONGSWAN_CONF and vici socket, PSK, AES-128-GCM, NAT-T forced by
libipsec (ESP in UDP 4500). Both legs use the same netns/veth layout.
"""

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
os.environ.setdefault("DPT_DATAPLANE", os.path.join(REPO, "build/dpsec-dataplane"))
sys.path.insert(0, os.path.join(REPO, "tests", "netns"))

import topo  # noqa: E402

SECONDS = 5
RUNS = 3  # per test and leg; the median goes in the table
K_AB = "0x" + "3c" * 16 + "01020304"
K_BA = "0x" + "c3" * 16 + "05060708"
CHARON = "/usr/lib/ipsec/charon"


def iperf(ns_client, ns_server, udp=False):
    """Receiver-side Gbit/s of one iperf3 run."""
    srv = subprocess.Popen(["ip", "netns", "exec", ns_server.name, "iperf3", "-s", "-1"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        args = ["iperf3", "-c", "10.2.0.2", "-t", str(SECONDS), "-J"]
        if udp:
            # 1400-byte datagrams fit the tunnel MTU on both gateways; -b 0 = as fast as it goes
            args += ["-u", "-b", "0", "-l", "1400"]
        p = ns_client.exec(args, check=False, timeout=SECONDS + 30)
        r = json.loads(p.stdout)
        if "error" in r:
            raise RuntimeError("iperf3: %s" % r["error"])
        end = r["end"]
        if udp:
            s = end["sum"]
            return s["bits_per_second"] * (1 - s.get("lost_percent", 0) / 100.0) / 1e9
        return end["sum_received"]["bits_per_second"] / 1e9
    finally:
        srv.kill()
        srv.wait()


def measure(client, server):
    """RUNS runs of each test: the median, and every run."""
    res = {}
    for k in ("tcp", "udp"):
        runs = [iperf(client, server, udp=(k == "udp")) for _ in range(RUNS)]
        res[k] = sorted(runs)[len(runs) // 2]
        res[k + "_runs"] = runs
    return res


def dpsec_leg():
    extra = topo.tunnel_pair(K_AB, K_BA, replay=64)
    t = topo.Topology(gwa="dpsec", gwb="dpsec", extra=extra, worker_cpus={"gwB": 0})
    try:
        got, out = t.ping("hA", "10.2.0.2", count=3)
        if got == 0:
            raise RuntimeError("no ping through dpsec gateways: %s" % out)
        return measure(t["hA"], t["hB"])
    finally:
        t.teardown()


STRONGSWAN_CONF = """charon {
  load = random nonce openssl kdf pem pkcs1 pubkey socket-default kernel-libipsec kernel-netlink vici
  install_virtual_ip = no
  plugins {
    vici { socket = unix:///run/charon.vici }
  }
  filelog { f { path = %(log)s
    default = 1
    time_format = %%T } }
  syslog { daemon { default = -1 } }
}
"""

SWANCTL_CONF = """connections {
  gw {
    version = 2
    local_addrs = %(me)s
    remote_addrs = %(peer)s
    proposals = aes128gcm16-prfsha256-ecp256
    local { auth = psk
            id = %(me)s }
    remote { auth = psk
             id = %(peer)s }
    children {
      net {
        local_ts = %(lsub)s
        remote_ts = %(rsub)s
        esp_proposals = aes128gcm16
        start_action = %(start)s
      }
    }
  }
}
secrets {
  ike-gw {
    id-a = 192.0.2.1
    id-b = 192.0.2.2
    secret = "%(psk)s"
  }
}
"""


class Charon:
    def __init__(self, ns, me, peer, lsub, rsub, start, psk):
        self.ns = ns
        self.dir = tempfile.mkdtemp(prefix="dpb-sw-", dir="/tmp")
        self.log = os.path.join(self.dir, "charon.log")
        conf = os.path.join(self.dir, "strongswan.conf")
        with open(conf, "w") as f:
            f.write(STRONGSWAN_CONF % {"log": self.log})
        self.swanctl = os.path.join(self.dir, "swanctl.conf")
        with open(self.swanctl, "w") as f:
            f.write(SWANCTL_CONF % {"me": me, "peer": peer, "lsub": lsub, "rsub": rsub,
                                    "start": start, "psk": psk})
        # One private mount namespace per charon: /run (pid file, vici socket) is a tmpfs.
        script = ("mount -t tmpfs tmpfs /run && (STRONGSWAN_CONF=%s %s &) && "
                  "for i in $(seq 100); do [ -S /run/charon.vici ] && break; sleep 0.1; done && "
                  "swanctl --load-all --uri unix:///run/charon.vici --file %s && "
                  "exec sleep infinity" % (conf, CHARON, self.swanctl))
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns.name, "unshare", "-m",
                                      "--propagation", "private", "sh", "-c", script],
                                     stdout=open(os.path.join(self.dir, "out"), "w"),
                                     stderr=subprocess.STDOUT)

    def log_text(self):
        out = ""
        for n in ("out", "charon.log"):
            try:
                with open(os.path.join(self.dir, n), errors="replace") as f:
                    out += f.read()[-1500:]
            except OSError:
                pass
        return out


def strongswan_leg():
    tag = secrets.token_hex(3)
    nss = {}
    charons = []
    try:
        for n in ("hA", "gwA", "gwB", "hB"):
            nss[n] = topo.Netns("%s%s-sw-%s" % (topo.NS_PREFIX, tag, n))
        topo.veth(nss["hA"], "eth0", nss["gwA"], "inside")
        topo.veth(nss["gwA"], "outside", nss["gwB"], "outside")
        topo.veth(nss["gwB"], "inside", nss["hB"], "eth0")
        nss["hA"].ip("addr", "add", "10.1.0.2/24", "dev", "eth0")
        nss["hA"].ip("route", "add", "default", "via", "10.1.0.1")
        nss["hB"].ip("addr", "add", "10.2.0.2/24", "dev", "eth0")
        nss["hB"].ip("route", "add", "default", "via", "10.2.0.1")
        for gw, inside, outside in (("gwA", "10.1.0.1/24", "192.0.2.1/24"),
                                    ("gwB", "10.2.0.1/24", "192.0.2.2/24")):
            nss[gw].ip("addr", "add", inside, "dev", "inside")
            nss[gw].ip("addr", "add", outside, "dev", "outside")
            nss[gw].sysctl("net.ipv4.ip_forward", "1")
        psk = secrets.token_hex(16)
        b = Charon(nss["gwB"], "192.0.2.2", "192.0.2.1", "10.2.0.0/24", "10.1.0.0/24", "trap", psk)
        charons.append(b)
        time.sleep(1.5)
        a = Charon(nss["gwA"], "192.0.2.1", "192.0.2.2", "10.1.0.0/24", "10.2.0.0/24", "start", psk)
        charons.append(a)
        deadline = time.time() + 30
        got = 0
        while time.time() < deadline and got == 0:
            p = nss["hA"].exec(["ping", "-n", "-c", "1", "-W", "1", "10.2.0.2"], check=False)
            got = 1 if p.returncode == 0 else 0
        if not got:
            raise RuntimeError("no ping through strongSwan gateways\ngwA:\n%s\ngwB:\n%s"
                               % (a.log_text(), b.log_text()))
        return measure(nss["hA"], nss["hB"])
    finally:
        for ns in nss.values():
            ns.delete()  # kills charon, sleep and iperf3 inside, drops the private mounts
        for c in charons:
            shutil.rmtree(c.dir, ignore_errors=True)


def run_all():
    res = {"note": "median of %d iperf3 runs of %d s each, AES-128-GCM, one TCP stream; UDP "
                   "1400-byte datagrams unlimited rate, received rate" % (RUNS, SECONDS)}
    try:
        res["dpsec"] = dpsec_leg()
    except Exception as e:
        res["dpsec_error"] = str(e)[-1500:]
    try:
        res["strongswan"] = strongswan_leg()
    except Exception as e:
        res["strongswan_error"] = str(e)[-1500:]
    return res


if __name__ == "__main__":
    print(json.dumps(run_all(), indent=1))
