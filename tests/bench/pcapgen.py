"""Benchmark traffic and configs: plaintext and ESP pcaps (scapy), dataplane config files.

Address plan (gateway under test = gwA of DESIGN.md's test topology):

    inside  10.1.0.1/24, one local host 10.1.0.2
    outside 192.0.2.1/24, peer gateway 192.0.2.2
    flow i  remote host 10.2.0.0 + 1 + i; its own SA pair and /32 policies when the
            benchmark uses one SA per flow (nsa > 1), otherwise one SA and /16 policies.

ENCRYPT traffic enters port 0 (inside): 10.1.0.2 -> flow host, UDP.
DECRYPT traffic enters port 1 (outside): ESP 192.0.2.2 -> 192.0.2.1 whose inner packet is
flow host -> 10.1.0.2, encrypted by scapy with the SA's keys, sequence numbers 1..n per SA.

A "size" is the Ethernet frame length on the wire including the 4-byte FCS, so the
frames written to the pcap are size - 4 bytes long (a 64-byte frame is 60 bytes of pcap).
"""

import hashlib
import hmac
import ipaddress
import random
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from scapy.all import IP, UDP, Ether, PcapWriter, Raw
from scapy.layers.ipsec import ESP, SecurityAssociation

FCS = 4
LOCAL_HOST = "10.1.0.2"
LOCAL_HOST_MAC = "02:00:00:00:00:01"
PEER_GW = "192.0.2.2"
PEER_GW_MAC = "02:00:00:00:00:02"
OUR_OUTSIDE = "192.0.2.1"
FLOW_BASE = int(ipaddress.ip_address("10.2.0.0")) + 1
SPI_OUT = 0x10000
SPI_IN = 0x20000
# IMIX 7:4:1 (frame size, share). The 1500-byte frame does not fit the tunnel:
# 1500 - 18 = 1482 bytes of inner IP + >= 54 bytes of ESP overhead exceed the 1500-byte MTU
# and the dataplane drops it (drop_too_big, ICMP frag-needed). 1456 is the largest frame
# whose ESP packet fits for all three algorithms (CBC: 20+8+16+pad16(1438+2)+16 = 1500).
IMIX = ((64, 7), (576, 4), (1456, 1))

# key material per algorithm: enc key length (GCM: key + 4-byte salt), auth key length
ALGOS = {
    "aes-gcm-128": {"key_len": 16 + 4},
    "aes-gcm-256": {"key_len": 32 + 4},
    "aes-cbc-128+hmac-sha256": {"key_len": 16, "auth_len": 32},
}


def flow_addr(i):
    return str(ipaddress.ip_address(FLOW_BASE + i))


def keys(algo, direction, i):
    """Deterministic distinct keys for SA number i of a direction: (enc key, auth key)."""
    seed = hashlib.sha256(("dpsec-bench %s %s %d" % (algo, direction, i)).encode()).digest()
    seed += hashlib.sha256(seed).digest()
    spec = ALGOS[algo]
    enc = seed[:spec["key_len"]]
    auth = seed[32:32 + spec["auth_len"]] if "auth_len" in spec else None
    return enc, auth


def sa_crypto_words(algo, enc, auth):
    if algo.startswith("aes-gcm"):
        return "aead %s 0x%s" % (algo, enc.hex())
    return "enc aes-cbc-128 0x%s auth hmac-sha256-128 0x%s" % (enc.hex(), auth.hex())


def scapy_sa(algo, spi, enc, auth):
    tunnel = IP(src=PEER_GW, dst=OUR_OUTSIDE)
    if algo.startswith("aes-gcm"):
        return SecurityAssociation(ESP, spi=spi, crypt_algo="AES-GCM", crypt_key=enc,
                                   tunnel_header=tunnel)
    return SecurityAssociation(ESP, spi=spi, crypt_algo="AES-CBC", crypt_key=enc,
                               auth_algo="SHA2-256-128", auth_key=auth, tunnel_header=tunnel)


def frame_sizes(size, count):
    """Frame sizes of the pcap, in order: one size, or IMIX interleaved 7:4:1."""
    if size != "imix":
        return [int(size)] * count
    cycle = []
    left = {s: n for s, n in IMIX}
    while any(left.values()):  # spread the shares instead of bunching them
        for s, _ in IMIX:
            if left[s]:
                cycle.append(s)
                left[s] -= 1
    return [cycle[k % len(cycle)] for k in range(count)]


def inner_packet(src, dst, frame_size):
    ip_len = frame_size - FCS - 14
    payload = ip_len - 20 - 8
    return IP(src=src, dst=dst, ttl=64) / UDP(sport=10000, dport=20000) / Raw(b"\xa5" * payload)


def ip_checksum(hdr):
    s = sum(struct.unpack("!%dH" % (len(hdr) // 2), hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def with_addrs(template, src, dst):
    """A copy of an IPv4 packet (bytes, UDP checksum 0) with new addresses and header checksum."""
    hdr = bytearray(template[:20])
    hdr[12:16] = ipaddress.ip_address(src).packed
    hdr[16:20] = ipaddress.ip_address(dst).packed
    hdr[10:12] = b"\0\0"
    hdr[10:12] = struct.pack("!H", ip_checksum(bytes(hdr)))
    return bytes(hdr) + template[20:]


class Templates:
    """Inner IPv4/UDP packets built once per frame size by scapy (UDP checksum 0, which
    IPv4 allows), then re-addressed per flow: scapy is ~10 ms per packet on this machine."""

    def __init__(self):
        self.cache = {}

    def get(self, src, dst, frame_size):
        if frame_size not in self.cache:
            p = inner_packet("0.0.0.0", "0.0.0.0", frame_size)
            p[UDP].chksum = 0
            self.cache[frame_size] = bytes(p)
        return with_addrs(self.cache[frame_size], src, dst)


def eth(dst_mac, src_mac, payload):
    return (bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(src_mac.replace(":", ""))
            + b"\x08\x00" + payload)


SA_ORDER_SEED = 1


def sa_order(nsa):
    """The order in which the frames visit the SAs: every SA once per nsa frames, in a fixed
    random order. In creation order, consecutive packets' SAs lie at one regular stride in
    memory (rte_malloc's), which the CPU's hardware prefetcher follows and real traffic
    does not give it: measured 1.7x the shuffled rate at 10,000 SAs (decrypt, 2026-12-02)."""
    perm = list(range(nsa))
    random.Random(SA_ORDER_SEED).shuffle(perm)
    return perm


def plain_frames(dst_mac, size, nsa, count):
    """ENCRYPT input: Ethernet frames (bytes)."""
    t = Templates()
    perm = sa_order(nsa)
    return [eth(dst_mac, LOCAL_HOST_MAC, t.get(LOCAL_HOST, flow_addr(perm[k % nsa]), fs))
            for k, fs in enumerate(frame_sizes(size, count))]


class EspEncoder:
    """RFC 4303 tunnel-mode ESP (RFC 4106 GCM, RFC 3602 CBC + RFC 4868 HMAC-SHA-256-128)
    written with the `cryptography` package, independent of the dataplane. Every pcap's
    first packets are decrypted by scapy's own ESP code (check_with_scapy), so this
    encoder cannot drift from scapy's reading of the RFCs unnoticed."""

    def __init__(self, algo, spi, enc, auth):
        self.algo, self.spi, self.auth = algo, spi, auth
        if algo.startswith("aes-gcm"):
            self.gcm = AESGCM(enc[:-4])
            self.salt = enc[-4:]
        else:
            self.cbc_key = enc

    def encrypt(self, inner, seq):
        gcm = self.algo.startswith("aes-gcm")
        block = 4 if gcm else 16
        padlen = (-(len(inner) + 2)) % block
        trailer = bytes(range(1, padlen + 1)) + bytes([padlen, 4])  # next header 4 = IPv4
        hdr = struct.pack("!II", self.spi, seq)
        # Deterministic IVs, unique per (key, sequence number) as ESP requires.
        if gcm:
            iv = struct.pack("!Q", seq)
            body = self.gcm.encrypt(self.salt + iv, inner + trailer, hdr)
            esp = hdr + iv + body
        else:
            iv = hashlib.sha256(hdr).digest()[:16]
            c = Cipher(algorithms.AES(self.cbc_key), modes.CBC(iv)).encryptor()
            ct = c.update(inner + trailer) + c.finalize()
            icv = hmac.new(self.auth, hdr + iv + ct, hashlib.sha256).digest()[:16]
            esp = hdr + iv + ct + icv
        outer = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(esp), seq & 0xFFFF, 0, 64, 50, 0,
                            ipaddress.ip_address(PEER_GW).packed,
                            ipaddress.ip_address(OUR_OUTSIDE).packed)
        outer = outer[:10] + struct.pack("!H", ip_checksum(outer)) + outer[12:]
        return outer + esp


def esp_frames(dst_mac, size, nsa, count, algo):
    """DECRYPT input: ESP frames (bytes), SA i gets sequence numbers 1, 2, ..."""
    t = Templates()
    enc_by_sa = {}
    seq = {}
    out = []
    perm = sa_order(nsa)
    for k, fs in enumerate(frame_sizes(size, count)):
        i = perm[k % nsa]
        if i not in enc_by_sa:
            enc, auth = keys(algo, "in", i)
            enc_by_sa[i] = EspEncoder(algo, SPI_IN + i, enc, auth)
            seq[i] = 0
        seq[i] += 1
        inner = t.get(flow_addr(i), LOCAL_HOST, fs)
        out.append(eth(dst_mac, PEER_GW_MAC, enc_by_sa[i].encrypt(inner, seq[i])))
    return out


def check_with_scapy(frames, algo, nsa, direction, sample=8):
    """Decrypt the first `sample` ESP frames with scapy's ESP implementation and the keys of
    `direction` ("in": what we generated, "out": what the dataplane sent). Returns the inner
    packets (scapy IP objects); raises if any does not decrypt/authenticate."""
    inner = []
    for f in frames[:sample]:
        pkt = Ether(f)
        spi = pkt[ESP].spi
        i = spi - (SPI_IN if direction == "in" else SPI_OUT)
        if not 0 <= i < nsa:
            raise ValueError("SPI 0x%x outside the benchmark's SAs" % spi)
        enc, auth = keys(algo, direction, i)
        sa = scapy_sa(algo, spi, enc, auth)
        inner.append(sa.decrypt(pkt[IP]))
    return inner


def write_pcap(path, frames):
    with PcapWriter(path, linktype=1, sync=False) as w:
        for f in frames:
            w.write(f)


def config(direction, algo, nsa, replay_window):
    """dataplane config text for one benchmark case."""
    lines = ["port 0 name inside", "port 1 name outside",
             "addr add 10.1.0.1/24 dev inside",
             "addr add %s/24 dev outside" % OUR_OUTSIDE,
             "neigh add %s lladdr %s dev outside" % (PEER_GW, PEER_GW_MAC),
             "neigh add %s lladdr %s dev inside" % (LOCAL_HOST, LOCAL_HOST_MAC),
             "route add 10.2.0.0/16 via %s dev outside" % PEER_GW]
    for i in range(nsa):
        remote = "10.2.0.0/16" if nsa == 1 else flow_addr(i) + "/32"
        if direction == "encrypt":
            enc, auth = keys(algo, "out", i)
            spi = SPI_OUT + i
            lines.append("sa add src %s dst %s proto esp spi 0x%08x dir out mode tunnel %s"
                         % (OUR_OUTSIDE, PEER_GW, spi, sa_crypto_words(algo, enc, auth)))
            lines.append("policy add src 10.1.0.0/24 dst %s dir out action protect spi 0x%08x"
                         % (remote, spi))
        else:
            enc, auth = keys(algo, "in", i)
            spi = SPI_IN + i
            lines.append("sa add src %s dst %s proto esp spi 0x%08x dir in mode tunnel %s "
                         "replay-window %d" % (PEER_GW, OUR_OUTSIDE, spi,
                                               sa_crypto_words(algo, enc, auth), replay_window))
            lines.append("policy add src %s dst 10.1.0.0/24 dir in action protect spi 0x%08x"
                         % (remote, spi))
    return "\n".join(lines) + "\n"


def esp_payload_len(algo, frame_size):
    """Bytes the cipher processes for one packet of frame_size: inner IP packet + ESP
    trailer padded to the cipher's block (4 for GCM, 16 for CBC). Used as crypto-perf's
    --buffer-sz so the ceiling is measured on the same amount of data."""
    inner = frame_size - FCS - 14
    block = 4 if algo.startswith("aes-gcm") else 16
    return -(-(inner + 2) // block) * block
