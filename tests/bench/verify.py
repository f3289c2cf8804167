"""Honesty checks: what the dataplane sends is checked by scapy, not by the dataplane.

ENCRYPT: plaintext frames in (not looped), port 1 written to a pcap; each ESP packet out
is decrypted by scapy with the outbound SA's keys and its inner packet compared with the
frame that went in (addresses, protocol, UDP payload; TTL one lower).
DECRYPT: scapy-checked ESP frames in, port 0 written to a pcap; each plaintext frame out is
compared with the inner packet that was encrypted.
"""

from scapy.all import IP, UDP, Ether, PcapReader
from scapy.layers.ipsec import ESP

import dataplane_bench
import pcapgen

SAMPLE = 48
# 64 B takes the dataplane's short-payload GCM code (aesgcm.h), 512 B ipsec-mb's
SIZES = (64, 512)


def _same(inner, ref):
    return (inner.src == ref.src and inner.dst == ref.dst and UDP in inner and UDP in ref
            and bytes(inner[UDP].payload) == bytes(ref[UDP].payload)
            and inner.ttl == ref.ttl - 1)


def check(ns, tag, direction, algo, nsa, workdir, empty_pcap, size=512):
    """Returns {"sent": n, "out": n, "ok": n, "bad": [...]}."""
    probe = "%s/verify-probe.pcap" % workdir
    pcapgen.write_pcap(probe, pcapgen.plain_frames("02:00:00:00:00:ff", 64, 1, 1))
    in_mac = dataplane_bench.discover_mac(
        ns, tag, direction, probe, workdir,
        dataplane_bench.vdevs(direction, probe, "%s/verify-probe-out.pcap" % workdir, empty_pcap))
    if direction == "encrypt":
        frames = pcapgen.plain_frames(in_mac, size, nsa, SAMPLE)
    else:
        frames = pcapgen.esp_frames(in_mac, size, nsa, SAMPLE, algo)
    refs = pcapgen.plain_frames(in_mac, size, nsa, SAMPLE)
    ref_by_flow = {}
    for f in refs:
        ip = Ether(f)[IP]
        ref_by_flow.setdefault(ip.dst, ip)
    pin = "%s/verify-in-%s.pcap" % (workdir, direction)
    pcapgen.write_pcap(pin, frames)
    conf = pcapgen.config(direction, algo, nsa, 64)
    out, counters, code = dataplane_bench.capture(ns, tag, direction, conf, pin, empty_pcap,
                                                  workdir)
    res = {"direction": direction, "algo": algo, "sas": nsa, "size": size, "sent": len(frames),
           "out": 0,
           "ok": 0, "bad": [], "dataplane_exit": code}
    for pkt in PcapReader(out):
        if IP not in pkt:
            continue
        if direction == "encrypt":
            if ESP not in pkt:
                continue
            res["out"] += 1
            spi = pkt[ESP].spi
            i = spi - pcapgen.SPI_OUT
            try:
                enc, auth = pcapgen.keys(algo, "out", i)
                inner = pcapgen.scapy_sa(algo, spi, enc, auth).decrypt(pkt[IP])
            except Exception as e:  # authentication failure or garbage
                res["bad"].append("spi 0x%x: %s" % (spi, e))
                continue
            # the flow's policy must have picked the flow's own SA
            ref = ref_by_flow.get(inner.dst)
            if ref is not None and _same(inner, ref) and (
                    nsa == 1 or inner.dst == pcapgen.flow_addr(i)):
                res["ok"] += 1
            else:
                res["bad"].append("spi 0x%x: inner %s" % (spi, inner.summary()))
        else:
            if UDP not in pkt or pkt[IP].dst != pcapgen.LOCAL_HOST:
                continue
            res["out"] += 1
            # decrypted: src is the flow host; refs are keyed by the encrypt-direction dst
            ref = ref_by_flow.get(pkt[IP].src)
            exp = None if ref is None else IP(src=ref.dst, dst=ref.src, ttl=ref.ttl) / ref[UDP]
            if exp is not None and _same(pkt[IP], exp):
                res["ok"] += 1
            else:
                res["bad"].append(pkt.summary())
    res["bad"] = res["bad"][:5]
    return res
