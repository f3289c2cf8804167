"""IKE daemons for the interop tests: dpsec-ike on a dpsec gateway, Debian's stock charon
(kernel-libipsec) on a kernel gateway.

Each daemon runs in its gateway's network namespace and in a private mount namespace with a
tmpfs on /run (`unshare -m`), so vici sockets and pid files of several daemons never clash
with each other or with the host's. swanctl reaches a daemon by entering both namespaces
(nsenter -t PID -m -n) and naming the socket with --uri.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import topo as T

REPO = T.REPO
DPSEC_IKE = os.environ.get("DPT_DPSEC_IKE", os.path.join(REPO, "build/dpsec-ike"))
STOCK_CHARON = "/usr/lib/ipsec/charon"
SWANCTL = "swanctl"
DPSEC_VICI = "unix:///run/dpsec/charon.vici"  # dpsec-ike's default: not set in its config
STOCK_VICI = "unix:///run/charon.vici"
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

CRYPTO_PLUGINS = ("random nonce aes sha1 sha2 md5 hmac gcm chapoly kdf openssl pem pkcs1 pkcs8 "
                  "x509 revocation constraints pubkey gmp curve25519")

# knl/chd at 2: the SAs and policies each daemon installs show in the logs of a failed test
LOG_LEVELS = "default = 1\n\t\t\tknl = 2\n\t\t\tike = 1\n\t\t\tcfg = 1\n\t\t\tchd = 2"


def dpsec_ike_conf(ctl_ep, extra_plugin=""):
    """strongswan.conf for dpsec-ike: only the dataplane endpoint and a log are set; plugin
    list, vici socket and routing stay at dpsec-ike's defaults, which the tests rely on."""
    return """dpsec-ike {
	plugins {
		dpsec {
			ctl = %s
			seq_poll = 500
			%s
		}
	}
	# fast retransmits: a dead peer is noticed within seconds (DPD test)
	retransmit_timeout = 1.0
	retransmit_base = 1.0
	retransmit_tries = 2
	# rekeyed inbound SAs go 1 s after a rekey (5 s by default): the rekey test checks
	# the dataplane holds exactly the new CHILD_SA before the next rekey
	delete_rekeyed_delay = 1
	filelog {
		ike {
			path = %s
			append = no
			flush_line = yes
			time_format = %%T
			%s
		}
	}
}
""" % (ctl_ep, extra_plugin, "@LOG@", LOG_LEVELS)


def stock_charon_conf():
    """strongswan.conf for Debian's charon on a kernel without ESP: kernel-libipsec is the
    IPsec backend (listed before kernel-netlink, which then only serves addresses/routes)."""
    return """charon {
	load = %s kernel-libipsec kernel-netlink socket-default vici updown
	plugins {
		vici {
			socket = %s
		}
		kernel-libipsec {
			load = yes
		}
	}
	filelog {
		charon {
			path = %s
			append = no
			flush_line = yes
			time_format = %%T
			%s
		}
	}
}
""" % (CRYPTO_PLUGINS, STOCK_VICI, "@LOG@", LOG_LEVELS)


class Daemon:
    """One IKE daemon (dpsec-ike or stock charon) in @ns with its own /run."""

    def __init__(self, ns, binary, conf_text, vici, tag):
        self.ns = ns
        self.binary = binary
        self.vici = vici
        self.dir = tempfile.mkdtemp(prefix="dpt-%s-" % tag, dir="/tmp")
        self.conf = os.path.join(self.dir, "strongswan.conf")
        self.log = os.path.join(self.dir, "daemon.log")
        self.out = os.path.join(self.dir, "stdout.log")
        self.swanctl_conf = os.path.join(self.dir, "swanctl.conf")
        with open(self.conf, "w") as f:
            f.write(conf_text.replace("@LOG@", self.log))
        self.proc = None

    def start(self):
        if not os.access(self.binary, os.X_OK):
            raise AssertionError("%s is missing (run make)" % self.binary)
        env = dict(os.environ, STRONGSWAN_CONF=self.conf)
        script = "mount -t tmpfs -o mode=0755 tmpfs /run && exec %s" % self.binary
        outf = open(self.out, "w")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns.name, "unshare", "-m", "--propagation", "private",
             "sh", "-c", script],
            stdout=outf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        outf.close()
        return self

    @property
    def pid(self):
        # ip netns exec, unshare (without --fork) and sh's exec all keep the pid.
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self, since=None):
        """stdout and the daemon log; with @since (from log_mark()) only what came after."""
        text = ""
        for path in (self.out, self.log):
            try:
                with open(path, "rb") as f:
                    f.seek((since or {}).get(path, 0))
                    body = f.read().decode(errors="replace")
                text += "---- %s\n%s" % (os.path.basename(path), body)
            except OSError:
                pass
        return text

    def log_mark(self):
        """Where each log ends now: a test in a module sharing the daemon looks only
        at what its own actions logged."""
        mark = {}
        for path in (self.out, self.log):
            try:
                mark[path] = os.path.getsize(path)
            except OSError:
                mark[path] = 0
        return mark

    def swanctl(self, *args, check=True, timeout=30):
        """swanctl inside the daemon's network and mount namespaces."""
        cmd = ["nsenter", "-t", str(self.pid), "-m", "-n", SWANCTL] + list(args) + \
            ["--uri", self.vici]
        return T.run(cmd, check=check, timeout=timeout)

    def wait_ready(self, timeout=READY_TIMEOUT):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if not self.alive():
                raise AssertionError("%s exited with %s before it was ready:\n%s"
                                     % (self.binary, self.proc.returncode, self.log_text()))
            last = self.swanctl("--stats", check=False, timeout=10)
            if last.returncode == 0:
                return self
            time.sleep(0.2)
        raise AssertionError("%s: vici %s not answering after %.0f s (%s)\n%s"
                             % (self.binary, self.vici, timeout,
                                last and last.stdout + last.stderr, self.log_text()))

    def load(self, swanctl_conf_text, keys=()):
        """Replace every connection and secret with those of @swanctl_conf_text; @keys are
        private key files to load too (swanctl reads them from private/ next to the file)."""
        with open(self.swanctl_conf, "w") as f:
            f.write(swanctl_conf_text)
        private = os.path.join(self.dir, "private")
        shutil.rmtree(private, ignore_errors=True)
        os.makedirs(private)
        for k in keys:
            shutil.copy(k, private)
        return self.swanctl("--load-all", "--clear", "--file", self.swanctl_conf)

    def initiate(self, child, timeout=30):
        return self.swanctl("--initiate", "--child", child, "--timeout", str(timeout - 5),
                            timeout=timeout)

    def terminate_ike(self, ike, check=True):
        return self.swanctl("--terminate", "--ike", ike, "--timeout", "10", check=check,
                            timeout=20)

    def list_sas(self):
        return parse_list_sas(self.swanctl("--list-sas").stdout)

    def list_pols(self):
        return self.swanctl("--list-pols").stdout

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)


_IKE_RE = re.compile(r"^(\S+): #(\d+), (\w+), IKEv(\d), ([0-9a-f]+)_i\*? ([0-9a-f]+)_r")
_CHILD_RE = re.compile(r"^\s+(\S+): #(\d+), reqid (\d+), (\w+), (\S+), (\S+)")
_TRAFFIC_RE = re.compile(r"^\s+(in|out)\s+([0-9a-f]{8})[^,]*,\s+(\d+) bytes,\s+(\d+) packets")


def parse_list_sas(text):
    """swanctl --list-sas -> [{name, id, state, spi_i, spi_r, children: [{name, id, reqid,
    state, mode, proposal, in: {spi, bytes, packets}, out: {...}}]}]."""
    sas = []
    child = None
    for line in text.splitlines():
        m = _IKE_RE.match(line)
        if m:
            sas.append({"name": m.group(1), "id": int(m.group(2)), "state": m.group(3),
                        "spi_i": m.group(5), "spi_r": m.group(6), "children": []})
            child = None
            continue
        m = _CHILD_RE.match(line)
        if m and sas:
            child = {"name": m.group(1), "id": int(m.group(2)), "reqid": int(m.group(3)),
                     "state": m.group(4), "mode": m.group(5), "proposal": m.group(6)}
            sas[-1]["children"].append(child)
            continue
        m = _TRAFFIC_RE.match(line)
        if m and child is not None:
            child[m.group(1)] = {"spi": int(m.group(2), 16), "bytes": int(m.group(3)),
                                 "packets": int(m.group(4))}
    return sas


def make_pki(workdir, ids):
    """A CA and one certificate + key per identity (strongswan-pki); returns
    {"ca": path, id: (cert path, key path)}."""
    def pki(*args, out=None):
        p = T.run(["pki"] + list(args))
        if out:
            with open(out, "w") as f:
                f.write(p.stdout)
        return out

    paths = {"ca": os.path.join(workdir, "ca.pem")}
    ca_key = pki("--gen", "--type", "ecdsa", "--size", "256", "--outform", "pem",
                 out=os.path.join(workdir, "ca.key"))
    pki("--self", "--ca", "--lifetime", "30", "--in", ca_key, "--type", "ecdsa",
        "--dn", "C=CH, O=dpsec test, CN=dpsec test CA", "--outform", "pem", out=paths["ca"])
    for ident in ids:
        key = pki("--gen", "--type", "ecdsa", "--size", "256", "--outform", "pem",
                  out=os.path.join(workdir, ident + ".key"))
        cert = os.path.join(workdir, ident + ".pem")
        p = subprocess.run(["pki", "--pub", "--in", key, "--type", "ecdsa"],
                           capture_output=True, check=True)
        p = subprocess.run(["pki", "--issue", "--lifetime", "30", "--cacert", paths["ca"],
                            "--cakey", ca_key, "--dn", "C=CH, O=dpsec test, CN=%s" % ident,
                            "--san", ident, "--outform", "pem"],
                           input=p.stdout, capture_output=True, check=True)
        with open(cert, "wb") as f:
            f.write(p.stdout)
        paths[ident] = (cert, key)
    return paths


def swanctl_conf(local, remote, local_id, remote_id, local_ts, remote_ts, esp="aes128gcm16",
                 ike="aes256-sha256-x25519", start_action="none", psk="dpsec-interop-psk",
                 child_extra="", conn_extra="", pki=None):
    """One IKEv2 connection "gw" with one CHILD_SA "net"; PSK, or certificates from
    make_pki() when @pki is given."""
    if pki:
        # the key itself goes to private/ (Daemon.load(keys=...))
        local_auth = "auth = pubkey\n\t\t\tcerts = %s" % pki[local_id][0]
        remote_auth = "auth = pubkey\n\t\t\tcacerts = %s" % pki["ca"]
        secrets = ""
    else:
        local_auth = remote_auth = "auth = psk"
        secrets = ("ike-gw {\n\t\tid-a = %s\n\t\tid-b = %s\n\t\tsecret = \"%s\"\n\t}"
                   % (local_id, remote_id, psk))
    return """connections {
	gw {
		version = 2
		local_addrs = %(local)s
		remote_addrs = %(remote)s
		proposals = %(ike)s
		%(conn_extra)s
		local {
			%(local_auth)s
			id = %(local_id)s
		}
		remote {
			%(remote_auth)s
			id = %(remote_id)s
		}
		children {
			net {
				local_ts = %(local_ts)s
				remote_ts = %(remote_ts)s
				esp_proposals = %(esp)s
				start_action = %(start_action)s
				%(child_extra)s
			}
		}
	}
}
secrets {
	%(secrets)s
}
""" % locals()
