"""Same-run reference: DPDK's own ipsec-secgw example on dpsec's vdevs, pcaps and cryptodev.

The issue states its targets against ipsec-secgw (1.3x at 64 B, 1.1x at 1400 B); the host
under this VM changes between sessions (crypto-only at 64 B has moved 1.9x), so the
reference is measured in the same run instead of quoted.

Built once into build/secgw/ from Debian's source of the installed DPDK (`apt-get source
--download-only dpdk=<version of dpdk-dev>`; deploy/deps.sh configures deb-src). One
change: the example's port configuration demands RX checksum offload, which net_pcap and
net_null lack, so it would not start; it is built asking for no offload (it then checks no
checksums, which can only make it faster).

Run: one lcore (-l 1: its main lcore polls, on the CPU of dpsec's worker), legacy mode
(no -l library mode), replay window off like dpsec's decrypt case, one SA each way, the
same pcap looped by net_pcap, net_null out, crypto_aesni_gcm. Mpps = the output port's
opackets from DPDK telemetry, 1-s samples after the warm-up, as dataplane_bench.measure.
"""

import glob
import json
import os
import socket
import subprocess
import tarfile
import time

import dataplane_bench
import pcapgen

REPO = dataplane_bench.REPO
BUILD = os.path.join(REPO, "build", "secgw")
BINARY = os.path.join(BUILD, "ipsec-secgw")
# the one line changed (see above), as it reads in 22.11's examples/ipsec-secgw/ipsec-secgw.c
RX_CSUM_LINE = "\t\t.offloads = RTE_ETH_RX_OFFLOAD_CHECKSUM,\n"
START_TIMEOUT = 30.0


def run(args, cwd=None, timeout=600):
    p = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("%s -> %d\n%s%s" % (" ".join(args), p.returncode, p.stdout[-1500:],
                                               p.stderr[-1500:]))
    return p.stdout


def build():
    """Path of the ipsec-secgw binary, building it first if needed."""
    if os.access(BINARY, os.X_OK):
        return BINARY
    version = run(["dpkg-query", "-W", "-f=${Version}", "dpdk-dev"]).strip()
    src = os.path.join(BUILD, "src")
    os.makedirs(src, exist_ok=True)
    if not glob.glob(os.path.join(src, "dpdk_*.orig.tar.*")):
        run(["apt-get", "source", "-q", "--download-only", "dpdk=" + version], cwd=src)
    orig = glob.glob(os.path.join(src, "dpdk_*.orig.tar.*"))[0]
    with tarfile.open(orig) as t:
        members = [m for m in t.getmembers()
                   if "/examples/ipsec-secgw/" in m.name or "/examples/common/" in m.name]
        t.extractall(src, members)
    app = glob.glob(os.path.join(src, "*", "examples", "ipsec-secgw"))[0]
    main_c = os.path.join(app, "ipsec-secgw.c")
    with open(main_c) as f:
        text = f.read()
    if RX_CSUM_LINE not in text:
        raise RuntimeError("secgw: %s does not read as expected (DPDK %s)" % (main_c, version))
    with open(main_c, "w") as f:
        f.write(text.replace(RX_CSUM_LINE, "\t\t.offloads = 0,\n", 1))
    run(["make", "-C", app, "-j2"], timeout=900)
    os.replace(os.path.join(app, "build", "ipsec-secgw-shared"), BINARY)
    return BINARY


def colon_hex(b):
    return ":".join("%02x" % x for x in b)


def config(algo):
    """Both directions of dpsec's 1-SA benchmark case (pcapgen's addresses, SPIs and keys):
    the example refuses an unprotected port without an inbound SA."""
    name = {"aes-gcm-128": "aes-128-gcm", "aes-gcm-256": "aes-256-gcm"}[algo]
    ein, _ = pcapgen.keys(algo, "in", 0)
    eout, _ = pcapgen.keys(algo, "out", 0)
    return "\n".join([
        "sp ipv4 in esp protect %d pri 1 dst 10.1.0.0/24 sport 0:65535 dport 0:65535"
        % pcapgen.SPI_IN,
        "sp ipv4 out esp protect %d pri 1 dst 10.2.0.0/16 sport 0:65535 dport 0:65535"
        % pcapgen.SPI_OUT,
        "sa in %d aead_algo %s aead_key %s mode ipv4-tunnel src %s dst %s"
        % (pcapgen.SPI_IN, name, colon_hex(ein), pcapgen.PEER_GW, pcapgen.OUR_OUTSIDE),
        "sa out %d aead_algo %s aead_key %s mode ipv4-tunnel src %s dst %s"
        % (pcapgen.SPI_OUT, name, colon_hex(eout), pcapgen.OUR_OUTSIDE, pcapgen.PEER_GW),
        "rt ipv4 dst 10.1.0.0/24 port 0",
        "rt ipv4 dst %s/32 port 1" % pcapgen.PEER_GW,
        "neigh port 0 %s" % pcapgen.LOCAL_HOST_MAC,
        "neigh port 1 %s" % pcapgen.PEER_GW_MAC,
    ]) + "\n"


class Telemetry:
    def __init__(self, prefix):
        self.path = "/var/run/dpdk/%s/dpdk_telemetry.v2" % prefix

    def stats(self, port):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            s.settimeout(5)
            s.connect(self.path)
            s.recv(4096)  # the greeting
            s.send(("/ethdev/stats,%d" % port).encode())
            return json.loads(s.recv(1 << 16))["/ethdev/stats"]
        finally:
            s.close()


def measure(tag, direction, algo, pcap, workdir, warmup, window):
    """One case: {"pps": median 1-s rate, "samples_pps", "in_pkts", "out_pkts", ...}."""
    binary = build()
    prefix = "dpb-sg-%s" % tag
    conf = os.path.join(workdir, "secgw-%s.cfg" % algo)
    with open(conf, "w") as f:
        f.write(config(algo))
    log = os.path.join(workdir, "secgw-%s-%s.log" % (direction, algo))
    src = "rx_pcap=%s,infinite_rx=1" % pcap
    devs = (["net_pcap0," + src, "net_null1,no-rx=1"] if direction == "encrypt"
            else ["net_null0,no-rx=1", "net_pcap1," + src])
    in_port, out_port = (0, 1) if direction == "encrypt" else (1, 0)
    args = [binary, "-l", "1", "--no-pci", "--file-prefix", prefix, "-m",
            str(dataplane_bench.MEM_MB)]
    for d in devs + ["crypto_aesni_gcm0"]:
        args += ["--vdev", d]
    args += ["--", "-p", "0x3", "-P", "-u", "0x2", "--config=(0,0,1),(1,0,1)", "-f", conf]
    tel = Telemetry(prefix)
    with open(log, "w") as logf:
        proc = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        deadline = time.time() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise RuntimeError("ipsec-secgw exited (%d):\n%s" % (proc.returncode,
                                                                      tail(log)))
            try:
                tel.stats(out_port)
                break
            except (OSError, ValueError, KeyError):
                if time.time() > deadline:
                    raise RuntimeError("ipsec-secgw: no telemetry after %.0f s:\n%s"
                                       % (START_TIMEOUT, tail(log)))
                time.sleep(0.2)
        first, last, samples, t0, t1 = dataplane_bench.sample(
            lambda: (tel.stats(out_port), tel.stats(in_port)), lambda s: s[0]["opackets"],
            warmup, window)
    finally:
        code = dataplane_bench.stop_process(proc)
        dataplane_bench.remove_dpdk_files(prefix)
        subprocess.run(["rm", "-rf", "/var/run/dpdk/" + prefix])
    out_pkts = last[0]["opackets"] - first[0]["opackets"]
    in_pkts = last[1]["ipackets"] - first[1]["ipackets"]
    return {"pps": samples[len(samples) // 2], "samples_pps": [round(x) for x in samples],
            "mean_pps": out_pkts / (t1 - t0), "in_pkts": in_pkts, "out_pkts": out_pkts,
            "exit_code": code}


def tail(path, n=1500):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


if __name__ == "__main__":
    # one case by hand: secgw.py DIRECTION ALGO PCAP
    import sys
    import tempfile
    w = tempfile.mkdtemp(prefix="secgw-")
    print(measure("manual", sys.argv[1], sys.argv[2], sys.argv[3], w, 2.0, 4.0))
