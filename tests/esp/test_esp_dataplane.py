# SPDX-License-Identifier: BSD-3-Clause
"""ESP packet tests of the real dpsec-dataplane (issue 3).

Every run is a dpsec-dataplane in its own ``dpt-*`` namespace with net_pcap wire ports
(see dp_harness.py): input frames are scapy-built, output frames are read back from the
tx pcaps and checked byte for byte; ESP is encrypted and decrypted by scapy with the keys
given in the config, never by dpsec itself.

    /usr/bin/python3 -m pytest -q tests/esp/test_esp_dataplane.py

DPT_DATAPLANE selects the binary (default: the ASan build, build/san/dpsec-dataplane).
"""

import os
import struct
import time
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_esp import key  # noqa: E402
import dp_harness as H  # noqa: E402

from scapy.all import ICMP, IP, TCP, UDP, Ether, Raw, raw  # noqa: E402
from scapy.layers.ipsec import ESP, SecurityAssociation  # noqa: E402

GW, PEER = "192.0.2.1", "192.0.2.2"
HOST_A, HOST_B = "10.1.0.2", "10.2.0.2"
SPI_OUT, SPI_IN = 0x100, 0x200
NATT_PORT = 4500
OUTER_TTL = 64

# name -> (grammar algorithm words, scapy cipher, cipher key bytes, scapy integ, integ key bytes)
# AEAD keys end in their 4-byte salt, as the grammar and scapy both expect.
ALGOS = {
    "aes-gcm-128": ("aead aes-gcm-128", "AES-GCM", 20, None, 0),
    "aes-gcm-256": ("aead aes-gcm-256", "AES-GCM", 36, None, 0),
    "chacha20-poly1305": ("aead chacha20-poly1305", "CHACHA20-POLY1305", 36, None, 0),
    "aes-cbc-128+hmac-sha1-96": ("enc aes-cbc-128 auth hmac-sha1-96", "AES-CBC", 16,
                                 "HMAC-SHA1-96", 20),
    "aes-cbc-256+hmac-sha256-128": ("enc aes-cbc-256 auth hmac-sha256-128", "AES-CBC", 32,
                                    "SHA2-256-128", 32),
    "aes-cbc-128+hmac-sha384-192": ("enc aes-cbc-128 auth hmac-sha384-192", "AES-CBC", 16,
                                    "SHA2-384-192", 48),
    "aes-cbc-128+hmac-sha512-256": ("enc aes-cbc-128 auth hmac-sha512-256", "AES-CBC", 16,
                                    "SHA2-512-256", 64),
}


class Sa:
    """One SA's parameters, its grammar line and its scapy twin."""

    def __init__(self, algo, spi, direction, natt, extra=""):
        self.algo, self.spi, self.dir, self.natt = algo, spi, direction, natt
        words, _, ek_len, _, ak_len = ALGOS[algo]
        self.ek, self.ak = key(ek_len, spi), key(ak_len, spi + 1)
        self.src, self.dst = (GW, PEER) if direction == "out" else (PEER, GW)
        w = words.split()
        if len(w) == 2:  # aead NAME
            alg = "%s %s 0x%s" % (w[0], w[1], self.ek.hex())
        else:  # enc NAME auth NAME
            alg = "%s %s 0x%s %s %s 0x%s" % (w[0], w[1], self.ek.hex(), w[2], w[3],
                                             self.ak.hex())
        self.line = ("sa add src %s dst %s proto esp spi %#x dir %s mode tunnel %s"
                     % (self.src, self.dst, spi, direction, alg))
        if direction == "in":
            self.line += " replay-window 64"
        if natt:
            self.line += " encap udp sport %d dport %d" % (NATT_PORT, NATT_PORT)
        if extra:
            self.line += " " + extra

    def scapy(self, natt=None):
        _, crypt, _, auth, _ = ALGOS[self.algo]
        kw = dict(proto=ESP, spi=self.spi, crypt_algo=crypt, crypt_key=self.ek,
                  tunnel_header=IP(src=self.src, dst=self.dst))
        if auth:
            kw.update(auth_algo=auth, auth_key=self.ak)
        if self.natt if natt is None else natt:
            kw["nat_t_header"] = UDP(sport=NATT_PORT, dport=NATT_PORT)
        return SecurityAssociation(**kw)

    def encrypt(self, inner, seq, how=""):
        """IP/[UDP/]ESP for @inner; how: "icv" flips an ICV bit, "padlen" lies about padding."""
        sa = self.scapy()
        if how == "padlen":
            orig = sa.crypt_algo.pad

            def bad_padlen(esp):
                esp = orig(esp)
                esp.padlen = 255  # far more than the payload holds
                return esp
            sa.crypt_algo.pad = bad_padlen
            try:
                e = sa.encrypt(inner, seq_num=seq)
            finally:
                sa.crypt_algo.pad = orig
        else:
            e = sa.encrypt(inner, seq_num=seq)
        b = bytearray(raw(e))
        if how == "icv":
            b[-1] ^= 0x01
        return bytes(b)


def frame(port, ip_bytes):
    """A frame from the port's neighbour to the dataplane's (net_pcap) MAC."""
    return Ether(dst=H.pcap_mac(port), src=H.PEER_MAC[port]) / IP(bytes(ip_bytes))


def inner_packets(src, dst):
    """Sizes around the cipher block and ICV boundaries, ICMP, TCP; all distinct.
    The largest still fits a 1500-byte MTU after ESP, NAT-T and the outer header."""
    pkts = []
    for i, size in enumerate([0, 1, 2, 15, 16, 17, 100, 1000, 1300]):
        pkts.append(IP(src=src, dst=dst, id=100 + i, ttl=64) / UDP(sport=1000 + i, dport=53)
                    / Raw(bytes((i * 3 + j) & 0xFF for j in range(size))))
    pkts.append(IP(src=src, dst=dst, id=200, ttl=33) / ICMP(id=7, seq=1) / Raw(b"ping" * 10))
    pkts.append(IP(src=src, dst=dst, id=201, tos=0x10) / TCP(sport=4000, dport=80, flags="S"))
    return [IP(raw(p)) for p in pkts]


def forwarded(pkt):
    """@pkt as a router emits it: TTL one less, header checksum recomputed."""
    p = IP(raw(pkt))
    p.ttl -= 1
    del p.chksum
    return raw(IP(raw(p)))


def ip_checksum_ok(ip_bytes):
    hl = (ip_bytes[0] & 0xF) * 4
    s = sum(struct.unpack("!%dH" % (hl // 2), ip_bytes[:hl]))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return s == 0xFFFF


def check_esp_frame(f, sa, seq, what):
    """Outer headers of one ESP frame to the peer; returns the decrypted inner bytes."""
    assert f.dst == H.PEER_MAC[1] and f.src == H.pcap_mac(1) and f.type == 0x0800, \
        "%s: Ethernet %s -> %s type %#x" % (what, f.src, f.dst, f.type)
    ipb = raw(f.payload)
    ip = IP(ipb)
    assert (ip.src, ip.dst, ip.ttl) == (GW, PEER, OUTER_TTL), \
        "%s: outer %s -> %s ttl %d" % (what, ip.src, ip.dst, ip.ttl)
    assert ip.len == len(ipb) and ip_checksum_ok(ipb), "%s: outer length/checksum" % what
    esp = ipb[ip.ihl * 4:]
    if sa.natt:
        assert ip.proto == 17, "%s: outer proto %d, want UDP" % (what, ip.proto)
        sp, dp, ln, ck = struct.unpack("!HHHH", esp[:8])
        assert (sp, dp, ln, ck) == (NATT_PORT, NATT_PORT, len(esp), 0), \
            "%s: UDP %d->%d len %d/%d csum %#x" % (what, sp, dp, ln, len(esp), ck)
        esp = esp[8:]
    else:
        assert ip.proto == 50, "%s: outer proto %d, want ESP" % (what, ip.proto)
    spi, q = struct.unpack("!II", esp[:8])
    assert (spi, q) == (sa.spi, seq), "%s: spi %#x seq %d, want %#x %d" % (what, spi, q,
                                                                          sa.spi, seq)
    # scapy decrypts ESP behind a plain IP header; the UDP layer was checked above
    plain_sa = sa.scapy(natt=False)
    dec = plain_sa.decrypt(IP(raw(IP(src=GW, dst=PEER, proto=50) / Raw(esp))))
    return raw(dec)


def assert_clean(res):
    """After every run: no mbuf leaked, no sanitizer report, a clean exit."""
    used, base = res.mbuf
    assert used is not None and used == base, res.why("mbuf_in_use %s != baseline %s"
                                                      % (used, base))
    assert "Sanitizer" not in res.log, res.why("sanitizer report in the log")
    assert res.exit_code == 0, res.why("dataplane exit code %s" % res.exit_code)


# --------------------------------------------------------------------------------------
# 1 + 2: outbound and inbound, every algorithm, raw ESP and NAT-T; one run per pair.

_runs = {}


def esp_run(algo, natt):
    k = (algo, natt)
    if k not in _runs:
        out_sa, in_sa = Sa(algo, SPI_OUT, "out", natt), Sa(algo, SPI_IN, "in", natt)
        cfg = H.base_config([
            out_sa.line, in_sa.line,
            "policy add src 10.1.0.0/24 dst 10.2.0.0/24 dir out action protect spi %#x" % SPI_OUT,
            "policy add src 10.2.0.0/24 dst 10.1.0.0/24 dir in action protect spi %#x" % SPI_IN,
        ])
        plain = inner_packets(HOST_A, HOST_B)
        inner = inner_packets(HOST_B, HOST_A)
        in0 = [frame(0, raw(p)) for p in plain]
        in1 = [frame(1, in_sa.encrypt(p, i + 1)) for i, p in enumerate(inner)]
        try:
            _runs[k] = (H.PcapGateway(cfg, in0, in1).run(), out_sa, in_sa, plain, inner)
        except AssertionError as e:
            _runs[k] = e
    r = _runs[k]
    if isinstance(r, AssertionError):
        raise r
    return r


PAIRS = [(a, n) for a in ALGOS for n in (False, True)]
IDS = ["%s-%s" % (a, "natt" if n else "esp") for a, n in PAIRS]


@pytest.mark.parametrize("algo,natt", PAIRS, ids=IDS)
def test_outbound(algo, natt):
    res, out_sa, _, plain, _ = esp_run(algo, natt)
    got = res.out[1]
    assert len(got) == len(plain), res.why("%d frames out on port 1, want %d"
                                           % (len(got), len(plain)))
    for i, (f, p) in enumerate(zip(got, plain)):
        dec = check_esp_frame(f, out_sa, i + 1, "packet %d" % i)
        assert dec == forwarded(p), res.why("packet %d: decrypted inner differs:\n%r\nwant\n%r"
                                            % (i, IP(dec), IP(forwarded(p))))
    sa = res.sas[SPI_OUT]
    assert int(sa.get("packets", 0)) == len(plain), res.why("SA packets %s" % sa.get("packets"))
    assert int(sa.get("seq_out", 0)) == len(plain), res.why("SA seq_out %s" % sa.get("seq_out"))
    assert not any(H.sa_drops(sa).values()), res.why("SA drops %s" % H.sa_drops(sa))
    assert res.port("inside")["rx"] == len(plain) and res.port("outside")["tx"] == len(plain)
    assert_clean(res)


@pytest.mark.parametrize("algo,natt", PAIRS, ids=IDS)
def test_inbound(algo, natt):
    res, _, _, _, inner = esp_run(algo, natt)
    got = res.out[0]
    assert len(got) == len(inner), res.why("%d frames out on port 0, want %d"
                                           % (len(got), len(inner)))
    for i, (f, p) in enumerate(zip(got, inner)):
        assert f.dst == H.PEER_MAC[0] and f.src == H.pcap_mac(0) and f.type == 0x0800, \
            res.why("packet %d: Ethernet %s -> %s" % (i, f.src, f.dst))
        assert raw(f.payload) == forwarded(p), res.why(
            "packet %d differs:\n%r\nwant\n%r" % (i, f.payload, IP(forwarded(p))))
    sa = res.sas[SPI_IN]
    assert int(sa.get("packets", 0)) == len(inner), res.why("SA packets %s" % sa.get("packets"))
    assert not any(H.sa_drops(sa).values()), res.why("SA drops %s" % H.sa_drops(sa))
    for port in ("inside", "outside"):
        assert res.drops(port) == {}, res.why("%s drops %s" % (port, res.drops(port)))
        assert res.port(port)["punted"] == 0, res.why("%s punted" % port)
    assert_clean(res)


# --------------------------------------------------------------------------------------
# 3: inbound errors, each dropped and counted once under its own reason.

ERROR_CASES = [("aes-gcm-128", False), ("aes-cbc-256+hmac-sha256-128", True),
               ("chacha20-poly1305", True)]


@pytest.mark.parametrize("algo,natt", ERROR_CASES,
                         ids=["%s-%s" % (a, "natt" if n else "esp") for a, n in ERROR_CASES])
def test_inbound_errors(algo, natt):
    in_sa = Sa(algo, SPI_IN, "in", natt)
    stranger = Sa(algo, 0x999, "in", natt)  # nobody configured this SPI
    cfg = H.base_config([
        in_sa.line,
        "policy add src 10.2.0.0/24 dst 10.1.0.0/24 dir in action protect spi %#x" % SPI_IN,
    ])
    P = inner_packets(HOST_B, HOST_A)
    outsider = IP(raw(IP(src="10.9.9.9", dst=HOST_A, id=77) / UDP(sport=9, dport=9)
                      / Raw(b"outside the selectors")))
    short_esp = struct.pack("!IH", SPI_IN, 1)  # 6 bytes: an SPI, half a sequence number
    if natt:
        trunc = IP(src=PEER, dst=GW) / UDP(sport=NATT_PORT, dport=NATT_PORT, chksum=0) \
            / Raw(short_esp)
    else:
        trunc = IP(src=PEER, dst=GW, proto=50) / Raw(short_esp)
    cases = [  # (ip bytes, delivered inner or None)
        (in_sa.encrypt(P[0], 1), P[0]),
        (in_sa.encrypt(P[0], 1), None),            # replay
        (in_sa.encrypt(P[1], 2, "icv"), None),     # auth
        (stranger.encrypt(P[2], 3), None),         # unknown SPI
        (raw(IP(raw(trunc))), None),               # truncated
        (in_sa.encrypt(P[3], 4, "padlen"), None),  # trailer
        (in_sa.encrypt(outsider, 5), None),        # policy
        (in_sa.encrypt(P[6], 6), P[6]),
    ]
    res = H.PcapGateway(cfg, [], [frame(1, c[0]) for c in cases]).run()

    want = [forwarded(p) for _, p in cases if p is not None]
    got = [raw(f.payload) for f in res.out[0]]
    assert got == want, res.why("delivered %d packets, want the 2 good ones" % len(got))
    assert res.out[1] == [], res.why("frames sent on the outside port")
    drops = H.sa_drops(res.sas[SPI_IN])
    assert drops == {"auth": 1, "replay": 1, "late": 0, "trailer": 1, "policy": 1, "expired": 0, "lease": 0,
                     "other": 0}, res.why("SA drops %s" % drops)
    assert res.drops("outside") == {"drop_esp": 3, "drop_no_sa": 1, "drop_esp_malformed": 1,
                                    "drop_policy": 1}, res.why("port drops %s"
                                                               % res.drops("outside"))
    assert res.drops("inside") == {}, res.why("inside drops %s" % res.drops("inside"))
    assert res.port("outside")["punted"] == 0, res.why("something went up the TAP")
    assert res.port("inside")["tx"] == 2
    assert_clean(res)


@pytest.mark.parametrize("algo,n_sa", [("aes-cbc-256+hmac-sha256-128", 8),
                                       ("chacha20-poly1305", 8), ("aes-gcm-128", 8),
                                       ("aes-gcm-128", 64), ("aes-cbc-256+hmac-sha256-128", 64)])
def test_many_sas_in_one_burst(algo, n_sa):
    """Eight (or a whole 64-packet burst's worth of) SAs interleaved packet by packet, both
    directions: the crypto of a whole burst runs together (one job-manager pass for
    CBC+HMAC), up to 64 SAs of it, yet every packet gets its own SA's keys and sequence
    numbers, and a forged or replayed one is charged to its own SA. (The real SAs' addresses
    seldom collide in the grouping index: test_esp_group covers collisions.)"""
    outs = [Sa(algo, SPI_OUT + i, "out", False) for i in range(n_sa)]
    ins = [Sa(algo, SPI_IN + i, "in", False) for i in range(n_sa)]
    lines = []
    for i in range(n_sa):
        lines += [outs[i].line, ins[i].line,
                  "policy add src 10.1.0.0/24 dst 10.2.%d.0/24 dir out action protect spi %#x"
                  % (i, SPI_OUT + i),
                  "policy add src 10.2.%d.0/24 dst 10.1.0.0/24 dir in action protect spi %#x"
                  % (i, SPI_IN + i)]
        if i:  # base_config routes 10.2.0.0/24
            lines.append("route add 10.2.%d.0/24 via 192.0.2.2 dev outside" % i)
    cfg = H.base_config(lines)

    def udp(src, dst, i):
        return IP(raw(IP(src=src, dst=dst, id=500 + i) / UDP(sport=2000 + i, dport=9)
                      / Raw(bytes((i * 7 + j) & 0xFF for j in range(40 + 13 * (i % 32))))))

    plain_out = [udp(HOST_A, "10.2.%d.2" % (k % n_sa), k) for k in range(4 * n_sa)]
    plain_in = [udp("10.2.%d.2" % (k % n_sa), HOST_A, k) for k in range(4 * n_sa)]
    esp_in = []
    for k, p in enumerate(plain_in):
        i, seq = k % n_sa, k // n_sa + 1
        esp_in.append(ins[i].encrypt(p, seq, "icv" if (i, seq) == (3, 2) else ""))
    esp_in.append(ins[5].encrypt(plain_in[5], 1))  # replay of SA 5's first packet
    res = H.PcapGateway(cfg, [frame(0, raw(p)) for p in plain_out],
                        [frame(1, e) for e in esp_in]).run()

    # a burst leaves grouped by SA; within an SA in order, with its own sequence numbers
    got = res.out[1]
    assert len(got) == len(plain_out), res.why("%d ESP frames" % len(got))
    per_sa = {i: [p for p in plain_out if int(p.dst.split(".")[2]) == i] for i in range(n_sa)}
    sent = {i: 0 for i in range(n_sa)}
    for f in got:
        i = struct.unpack("!I", raw(f.payload)[20:24])[0] - SPI_OUT
        assert 0 <= i < n_sa, res.why("unknown SPI")
        want = per_sa[i][sent[i]]
        sent[i] += 1
        assert check_esp_frame(f, outs[i], sent[i], "SA %d" % i) == forwarded(want)
    want_in = sorted(forwarded(p) for k, p in enumerate(plain_in)
                     if (k % n_sa, k // n_sa + 1) != (3, 2))
    assert sorted(raw(f.payload) for f in res.out[0]) == want_in, res.why("decrypted traffic")
    for i in range(n_sa):
        drops = H.sa_drops(res.sas[SPI_IN + i])
        assert drops["auth"] == (1 if i == 3 else 0) and drops["replay"] == (1 if i == 5 else 0), \
            res.why("SA %d drops %s" % (i, drops))
        assert int(res.sas[SPI_OUT + i]["packets"]) == 4
    assert_clean(res)


def test_natt_port_of_the_sa():
    """An inbound NAT-T SA on another local port than 4500 (charon's port_nat_t): its
    ESP-in-UDP is taken there and only there; IKE and keepalives on that port are treated
    as on 4500; once the SA is gone the port is plain UDP again (the kernel's)."""
    port = 4600
    in_sa = Sa("aes-gcm-128", SPI_IN, "in", False,
               extra="encap udp sport %d dport %d" % (NATT_PORT, port))
    cfg = H.base_config([
        in_sa.line,
        "policy add src 10.2.0.0/24 dst 10.1.0.0/24 dir in action protect spi %#x" % SPI_IN,
    ])
    P = inner_packets(HOST_B, HOST_A)

    def esp_udp(inner, seq, dport):
        e = IP(in_sa.encrypt(inner, seq))  # raw ESP, then wrapped as the peer's NAT would
        return raw(IP(src=PEER, dst=GW) / UDP(sport=NATT_PORT, dport=dport, chksum=0)
                   / Raw(raw(e.payload)))

    frames = [esp_udp(P[0], 1, port),                 # delivered
              esp_udp(P[1], 2, NATT_PORT),            # right SA, wrong port of ours
              raw(IP(src=PEER, dst=GW) / UDP(sport=NATT_PORT, dport=port)
                  / Raw(b"\x00\x00\x00\x00ike")),     # IKE on the SA's port: the kernel's
              raw(IP(src=PEER, dst=GW) / UDP(sport=NATT_PORT, dport=port) / Raw(b"\xff")),
              raw(IP(src=PEER, dst=GW) / UDP(sport=9, dport=port + 1) / Raw(b"plain"))]
    res = H.PcapGateway(cfg, [], [frame(1, f) for f in frames]).run()
    assert [raw(f.payload) for f in res.out[0]] == [forwarded(P[0])], \
        res.why("delivered %d" % len(res.out[0]))
    assert res.drops("outside") == {"drop_no_sa": 1, "drop_natt_keepalive": 1}, \
        res.why("drops %s" % res.drops("outside"))
    assert res.port("outside")["punted"] == 2, res.why("punted %s" % res.port("outside"))
    assert_clean(res)


def test_gcm_nonces_when_admission_shrinks_a_group():
    """A burst's group of one AES-GCM SA that admission cuts below GCM_STAGE_BELOW (4): the
    nonces of the packets left were not staged for the group's size, and must still be right
    (plain ESP for a NAT-T SA is refused before decryption, the ESP-in-UDP goes on)."""
    in_sa = Sa("aes-gcm-128", SPI_IN, "in", True)
    cfg = H.base_config([
        in_sa.line,
        "policy add src 10.2.0.0/24 dst 10.1.0.0/24 dir in action protect spi %#x" % SPI_IN,
    ])
    P = inner_packets(HOST_B, HOST_A)
    plain_esp = [raw(IP(src=PEER, dst=GW, proto=50)
                     / Raw(raw(IP(in_sa.encrypt(P[i], 10 + i))[UDP].payload)))
                 for i in range(3)]
    good = [in_sa.encrypt(P[i], 1 + i) for i in range(3)]
    res = H.PcapGateway(cfg, [], [frame(1, f) for f in plain_esp + good]).run()
    assert [raw(f.payload) for f in res.out[0]] == [forwarded(P[i]) for i in range(3)], \
        res.why("delivered %d of the 3 good ones" % len(res.out[0]))
    assert res.drops("outside") == {"drop_no_sa": 3}, res.why("drops %s" % res.drops("outside"))
    drops = H.sa_drops(res.sas[SPI_IN])
    assert drops["auth"] == 0, res.why("SA drops %s" % drops)
    assert_clean(res)


def fragmented_inbound(natt, count, reverse):
    """An inbound SA and its policy, @count 1300-byte inner packets, and their ESP (in UDP
    with @natt) cut into three pieces each, the pieces of packet i reversed if reverse(i)."""
    from scapy.all import fragment
    in_sa = Sa("aes-gcm-128", SPI_IN, "in", natt)
    cfg = H.base_config([
        in_sa.line,
        "policy add src 10.2.0.0/24 dst 10.1.0.0/24 dir in action protect spi %#x" % SPI_IN,
    ])
    big = [IP(raw(IP(src=HOST_B, dst=HOST_A, id=900 + i) / UDP(sport=7, dport=7)
                  / Raw(bytes((i + j) & 0xFF for j in range(1300))))) for i in range(count)]
    frags = []
    for i, p in enumerate(big):
        outer = IP(in_sa.encrypt(p, i + 1))
        outer.id = 0x700 + i
        pieces = [raw(f) for f in fragment(outer, fragsize=600)]
        assert len(pieces) == 3 and IP(pieces[0]).proto == (17 if natt else 50)
        frags += pieces[::-1] if reverse(i) else pieces
    return in_sa, cfg, big, frags


def test_fragmented_esp_is_reassembled():
    """ESP the path fragmented is put together before decryption (RFC 4303 3.4.1), in
    any order; the pieces of a packet that never completes are dropped after the timeout
    and counted, and their buffers come back."""
    from scapy.all import fragment
    in_sa, cfg, big, frags = fragmented_inbound(False, 3, lambda i: i == 1)
    lost = IP(in_sa.encrypt(big[0], 10))
    lost.id = 0x7ff
    frags.append(raw(fragment(lost, fragsize=600)[0]))  # its other pieces never come
    res = H.PcapGateway(cfg, [], [frame(1, f) for f in frags]).run()
    got = sorted(raw(f.payload) for f in res.out[0])
    assert got == sorted(forwarded(p) for p in big), res.why("delivered %d" % len(got))
    assert int(res.glob.get("reass_dropped", 0)) == 1, res.why("glob %s" % res.glob)
    assert res.port("outside")["punted"] == 0, res.why("fragments went to the kernel")
    assert_clean(res)


def test_fragmented_esp_in_udp_is_reassembled():
    """With a NAT-T SA in place, UDP fragments to the gateway are reassembled before
    anything else (only the first piece shows the port): ESP-in-UDP is decrypted, while
    a fragmented IKE message on the same port goes to the kernel cut up again, which
    reassembles it once more; the dataplane keeps none of it."""
    from scapy.all import fragment
    # the second packet's port comes last
    in_sa, cfg, big, frags = fragmented_inbound(True, 2, lambda i: i == 1)
    # an IKE_AUTH with certificates, too big for one frame: non-ESP marker, then IKE
    ike = IP(src=PEER, dst=GW, id=0x7aa) / UDP(sport=NATT_PORT, dport=NATT_PORT) / Raw(
        b"\0\0\0\0" + bytes(j & 0xFF for j in range(2500)))
    ike_pieces = [raw(f) for f in fragment(IP(raw(ike)), fragsize=1000)]
    assert len(ike_pieces) == 3
    frags += ike_pieces[::-1]
    res = H.PcapGateway(cfg, [], [frame(1, f) for f in frags]).run()
    got = sorted(raw(f.payload) for f in res.out[0])
    assert got == sorted(forwarded(p) for p in big), res.why("delivered %d" % len(got))
    assert int(res.sas[SPI_IN].get("packets", 0)) == len(big), res.why("SA %s" % res.sas[SPI_IN])
    # the IKE message reached the kernel as fragments of the wire's size, whole
    assert 2 <= res.port("outside")["punted"] <= 3, res.why("punted %s" % res.port("outside"))
    assert res.snmp["Ip"]["ReasmOKs"] == 1, res.why("kernel Ip %s" % res.snmp["Ip"])
    assert res.snmp["Udp"]["NoPorts"] + res.snmp["Udp"]["InDatagrams"] == 1, \
        res.why("kernel Udp %s" % res.snmp["Udp"])
    assert int(res.glob.get("reass_dropped", 0)) == 0, res.why("glob %s" % res.glob)
    assert_clean(res)


def test_udp_fragments_without_natt_sa_go_to_the_kernel():
    """Without NAT-T SAs, UDP fragments to the gateway are the kernel's, as they came."""
    from scapy.all import fragment
    cfg = H.base_config()
    ike = IP(src=PEER, dst=GW, id=0x7ab) / UDP(sport=500, dport=500) / Raw(
        bytes(j & 0xFF for j in range(2500)))
    pieces = [raw(f) for f in fragment(IP(raw(ike)), fragsize=1000)]
    res = H.PcapGateway(cfg, [], [frame(1, f) for f in pieces]).run()
    assert res.port("outside")["punted"] == len(pieces), res.why("punted %s"
                                                                % res.port("outside"))
    assert res.snmp["Ip"]["ReasmOKs"] == 1, res.why("kernel Ip %s" % res.snmp["Ip"])
    assert int(res.glob.get("reass_dropped", 0)) == 0, res.why("glob %s" % res.glob)
    assert_clean(res)


def test_show_sa_at_scale():
    """`show sa` of 10,000 SAs (a few MB, above the request size limit) is answered."""
    n = 10000
    lines = ["sa add src %s dst %s proto esp spi %#x dir out mode tunnel aead aes-gcm-128 0x%s"
             % (GW, PEER, 0x10000 + i, key(20, i).hex()) for i in range(n)]
    gw = H.LiveGateway(H.base_config(lines))
    try:
        gw.start()
        sas = gw.dp.ctl_json("show", "sa", timeout=60).get("sas", [])
        text = gw.dp.ctl("show", "sa", timeout=60).stdout
    except BaseException:
        gw.close()
        raise
    res = gw.finish()
    assert len(sas) == n, res.why("show sa returned %d of %d SAs" % (len(sas), n))
    assert sorted(int(s["sa"]["spi"]) for s in sas) == list(range(0x10000, 0x10000 + n))
    assert text.count("0x000") >= n, res.why("text table cut short")
    assert_clean(res)


def test_inbound_seq_in():
    """An SA installed with seq-in N (a resync) refuses N and everything older; `show sa`
    reports the highest number accepted, and `sa update` keeps that floor."""
    in_sa = Sa("aes-gcm-128", SPI_IN, "in", False, extra="seq-in 1000")
    cfg = H.base_config([
        in_sa.line,
        "policy add src 10.2.0.0/24 dst 10.1.0.0/24 dir in action protect spi %#x" % SPI_IN,
    ])
    P = inner_packets(HOST_B, HOST_A)
    first = [(900, False), (1000, False), (1001, True), (1063, True), (2000, True),
             (1990, True), (1001, False)]
    gw = H.LiveGateway(cfg)
    try:
        gw.start()
        gw.inject(1, [frame(1, in_sa.encrypt(P[i % 4], s)) for i, (s, _) in enumerate(first)])
        gw.wait_sent()
        time.sleep(0.3)
        before = gw.dp.ctl_json("show", "sa")["sas"][0]
        gw.dp.ctl("sa", "update", "dst", GW, "proto", "esp", "spi", "%#x" % SPI_IN,
                  "new-src", PEER)
        after_update = [(1990, False), (2001, True)]
        gw.inject(1, [frame(1, in_sa.encrypt(P[4], s)) for s, _ in after_update])
    except BaseException:
        gw.close()
        raise
    res = gw.finish()
    want = [forwarded(P[i % 4]) for i, (_, ok) in enumerate(first) if ok] + [forwarded(P[4])]
    got = [raw(f.payload) for f in res.out[0]]
    assert got == want, res.why("delivered %d, want %d" % (len(got), len(want)))
    assert int(before.get("seq_in", 0)) == 2000, res.why("seq_in %s" % before.get("seq_in"))
    assert int(res.sas[SPI_IN].get("seq_in", 0)) == 2001, res.why(str(res.sas[SPI_IN]))
    # all four are at or below a floor (900, 1000; 1001 after 2000 with window 64; 1990 after
    # the update moved the floor to 2000): left of the window, not duplicates it remembers
    d = H.sa_drops(res.sas[SPI_IN])
    assert (d["late"], d["replay"]) == (4, 0), res.why("refusals over both records: %s" % d)
    assert_clean(res)


def test_inbound_policy_bound_to_tunnel():
    """Two tunnels to one peer: neither SA delivers the other's traffic. A rekeyed SA of
    the same tunnel (same reqid) still delivers after the policy moved to its successor."""
    t1 = Sa("aes-gcm-128", 0x301, "in", False, extra="reqid 1")
    t1_new = Sa("aes-gcm-128", 0x303, "in", False, extra="reqid 1")
    t2 = Sa("aes-gcm-128", 0x302, "in", False, extra="reqid 2")
    cfg = H.base_config([
        "route add 10.3.0.0/24 via 192.0.2.2 dev outside",
        t1.line, t1_new.line, t2.line,
        # tunnel 1 was rekeyed: its policy already names the new SA 0x303
        "policy add src 10.2.0.0/24 dst 10.1.0.0/24 dir in action protect spi 0x303",
        "policy add src 10.3.0.0/24 dst 10.1.0.0/24 dir in action protect spi 0x302",
    ])
    from_b = inner_packets(HOST_B, HOST_A)[:2]
    from_c = [IP(raw(IP(src="10.3.0.2", dst=HOST_A, id=60 + i) / UDP(sport=9, dport=9)
                     / Raw(b"c%d" % i))) for i in range(2)]
    cases = [
        t1.encrypt(from_b[0], 1),       # old SA of tunnel 1, its own traffic: delivered
        t1_new.encrypt(from_b[1], 1),   # new SA of tunnel 1: delivered
        t2.encrypt(from_c[0], 1),       # tunnel 2, its own traffic: delivered
        t1.encrypt(from_c[1], 2),       # tunnel 1 delivering tunnel 2's selector: dropped
        t2.encrypt(from_b[0], 2),       # tunnel 2 delivering tunnel 1's selector: dropped
    ]
    res = H.PcapGateway(cfg, [], [frame(1, c) for c in cases]).run()
    want = [forwarded(p) for p in (from_b[0], from_b[1], from_c[0])]
    got = [raw(f.payload) for f in res.out[0]]
    assert got == want, res.why("delivered %d packets, want 3" % len(got))
    for spi, pol in ((0x301, 1), (0x302, 1), (0x303, 0)):
        assert H.sa_drops(res.sas[spi])["policy"] == pol, \
            res.why("SA %#x drops %s" % (spi, H.sa_drops(res.sas[spi])))
    assert res.sas[0x301]["sa"].get("reqid") == 1, res.why(str(res.sas[0x301]))
    assert res.drops("outside") == {"drop_policy": 2}, \
        res.why("port drops %s" % res.drops("outside"))
    assert_clean(res)


# --------------------------------------------------------------------------------------
# 4: discard, bypass and trap policies; ACQUIRE events seen by a channel client.

def test_policies():
    out_sa = Sa("aes-gcm-128", SPI_OUT, "out", False)
    cfg = H.base_config([
        "route add 10.3.0.0/24 via 192.0.2.2 dev outside",
        "route add 10.4.0.0/24 via 192.0.2.2 dev outside",
        "route add 10.5.0.0/24 via 192.0.2.2 dev outside",
        out_sa.line,
        "policy add src 10.1.0.0/24 dst 10.2.0.0/24 dir out action protect spi %#x" % SPI_OUT,
        "policy add src 10.1.0.0/24 dst 10.3.0.0/24 dir out action discard",
        "policy add src 10.1.0.0/24 dst 10.4.0.0/24 dir out action bypass",
        "policy add src 10.1.0.0/24 dst 10.5.0.0/24 dir out action trap",
    ])
    gw = H.LiveGateway(cfg)
    try:
        gw.start()
        mon = gw.start_monitor()
        discard = inner_packets(HOST_A, "10.3.0.2")[:3]
        bypass = inner_packets(HOST_A, "10.4.0.2")[:4]
        trap = inner_packets(HOST_A, "10.5.0.2")[:5]
        protect = inner_packets(HOST_A, HOST_B)[:2]
        gw.inject(0, [frame(0, raw(p)) for p in discard + bypass + protect])
        # several packets within one second hit the trap: one ACQUIRE
        gw.inject(0, [frame(0, raw(p)) for p in trap], gap=0.05)
        mon.wait("acquire", 1, timeout=5)  # arrived before the run is stopped
    except BaseException:
        gw.close()
        raise
    res = gw.finish()

    acq = [e["acquire"] for e in res.events if "acquire" in e]
    assert len(acq) == 1, res.why("ACQUIRE events: %s" % res.events)
    a = acq[0]
    assert H.as_text(a["src"]) == HOST_A and H.as_text(a["dst"]) == "10.5.0.2", res.why(str(a))
    assert int(a.get("proto", 0)) == 17, res.why(str(a))
    sel = a["sel"]
    assert (H.as_text(sel["src"]["addr"]), int(sel["src"]["len"]),
            H.as_text(sel["dst"]["addr"]), int(sel["dst"]["len"])) == \
        ("10.1.0.0", 24, "10.5.0.0", 24), res.why(str(a))
    assert not any("expire" in e or "mapping" in e for e in res.events), res.why(str(res.events))

    out = res.out[1]
    assert len(out) == len(bypass) + len(protect), res.why("%d frames out" % len(out))
    clear = [f for f in out if IP(raw(f.payload)).proto != 50]
    assert [raw(f.payload) for f in clear] == [forwarded(p) for p in bypass], \
        res.why("bypass traffic not forwarded in clear as sent")
    for f in clear:
        assert f.dst == H.PEER_MAC[1] and f.src == H.pcap_mac(1)
    esp = [f for f in out if IP(raw(f.payload)).proto == 50]
    for i, (f, p) in enumerate(zip(esp, protect)):
        assert check_esp_frame(f, out_sa, i + 1, "protected %d" % i) == forwarded(p)
    assert len(esp) == len(protect)
    assert res.out[0] == [], res.why("frames on the inside port")
    assert res.drops("inside") == {"drop_policy": len(discard), "drop_trap": len(trap)}, \
        res.why("inside drops %s" % res.drops("inside"))
    assert res.drops("outside") == {}, res.why("outside drops %s" % res.drops("outside"))
    assert_clean(res)


def test_port_selectors():
    """Protocol and port selectors decide on the packet's own L4 header."""
    out_sa = Sa("aes-gcm-128", SPI_OUT, "out", False)
    cfg = H.base_config([
        "route add 10.6.0.0/24 via 192.0.2.2 dev outside",
        "route add 10.7.0.0/24 via 192.0.2.2 dev outside",
        out_sa.line,
        "policy add src 10.1.0.0/24 dst 10.6.0.0/24 proto udp dport 53 dir out "
        "action protect spi %#x" % SPI_OUT,
        "policy add src 10.1.0.0/24 dst 10.6.0.0/24 dir out action discard",
        "policy add src 10.1.0.0/24 dst 10.7.0.0/24 proto udp sport 1000-1999 dir out "
        "action bypass",
        "policy add src 10.1.0.0/24 dst 10.7.0.0/24 dir out action discard priority 2000",
    ])

    def udp(dst, sport, dport, i):
        return IP(src=HOST_A, dst=dst, id=300 + i) / UDP(sport=sport, dport=dport) / \
            Raw(b"sel%d" % i)

    protect = [udp("10.6.0.2", 5000 + i, 53, i) for i in range(3)]
    discard = [udp("10.6.0.2", 5000, 54, 10),
               IP(src=HOST_A, dst="10.6.0.2", id=311) / TCP(sport=5000, dport=53),
               udp("10.7.0.2", 2500, 53, 12), udp("10.7.0.2", 999, 53, 13)]
    bypass = [udp("10.7.0.2", 1000, 9, 20), udp("10.7.0.2", 1999, 9, 21)]
    gw = H.LiveGateway(cfg)
    try:
        gw.start()
        gw.inject(0, [frame(0, raw(p)) for p in protect + discard + bypass])
    except BaseException:
        gw.close()
        raise
    res = gw.finish()
    out = res.out[1]
    esp = [f for f in out if IP(raw(f.payload)).proto == 50]
    clear = [f for f in out if IP(raw(f.payload)).proto != 50]
    assert len(esp) == len(protect), res.why("%d ESP frames, want %d" % (len(esp),
                                                                          len(protect)))
    for i, (f, p) in enumerate(zip(esp, protect)):
        assert check_esp_frame(f, out_sa, i + 1, "dport 53 #%d" % i) == forwarded(p)
    assert [raw(f.payload) for f in clear] == [forwarded(p) for p in bypass], \
        res.why("sport 1000-1999 not bypassed in clear")
    assert res.drops("inside") == {"drop_policy": len(discard)}, \
        res.why("inside drops %s" % res.drops("inside"))
    assert_clean(res)


def test_burst_of_fragments():
    """Two full RX bursts of packets wider than the tunnel: every one is split and its
    pieces encrypted, twice a burst's worth of output for one port, nothing lost."""
    out_sa = Sa("aes-gcm-128", SPI_OUT, "out", False)
    cfg = H.base_config([
        out_sa.line,
        "policy add src 10.1.0.0/24 dst 10.2.0.0/24 dir out action protect spi %#x" % SPI_OUT,
    ])
    big = [IP(src=HOST_A, dst=HOST_B, id=0x4000 + i, flags=0) / UDP(sport=7000, dport=7001)
           / Raw(bytes((i + j) & 0xFF for j in range(1452))) for i in range(64)]
    res = H.PcapGateway(cfg, [frame(0, raw(p)) for p in big], []).run()
    esp = [f for f in res.out[1] if f.type == 0x0800 and IP(raw(f.payload)).proto == 50]
    assert len(esp) == 2 * len(big), res.why("%d ESP frames, want %d" % (len(esp),
                                                                          2 * len(big)))
    pieces = {}
    for i, f in enumerate(esp):
        inner = IP(check_esp_frame(f, out_sa, i + 1, "fragment %d" % i))
        pieces.setdefault(inner.id, []).append(inner)
    for p in big:
        frags = sorted(pieces.get(p.id, []), key=lambda x: x.frag)
        assert len(frags) == 2 and frags[0].flags.MF and not frags[1].flags.MF, \
            res.why("id %#x: %d pieces" % (p.id, len(frags)))
        body = b"".join(bytes(f.payload) for f in frags)
        assert body == raw(p)[20:], res.why("id %#x reassembles differently" % p.id)
    assert res.drops("inside") == {}, res.why("inside drops %s" % res.drops("inside"))
    assert_clean(res)


SEND_UDP = r'''
import socket, sys
for spec in sys.argv[1:]:
    src, sport, dst, dport = spec.split(":")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src, int(sport)))
    s.sendto(b"dpsec-%s" % sport.encode(), (dst, int(dport)))
    s.close()
'''


def test_local_traffic_obeys_spd():
    """What the gateway's kernel sends through a TAP meets the same SPD as transit
    traffic (no plaintext for a protected selector), except IKE."""
    out_sa = Sa("aes-gcm-128", SPI_OUT, "out", False)
    cfg = H.base_config([
        "route add 10.3.0.0/24 via 192.0.2.2 dev outside",
        out_sa.line,
        "policy add src 10.1.0.0/24 dst 10.2.0.0/24 dir out action protect spi %#x" % SPI_OUT,
        "policy add src 10.1.0.0/24 dst 10.3.0.0/24 dir out action discard",
        "policy add src 192.0.2.1/32 dst 192.0.2.2/32 dir out action discard",
    ])
    gw = H.LiveGateway(cfg)
    try:
        gw.start()
        for dst in ("10.2.0.2", "10.3.0.2"):
            gw.ns.exec(["ping", "-n", "-q", "-c", "2", "-i", "0.2", "-W", "1", "-I",
                        "10.1.0.1", dst], check=False)
        gw.ns.exec([H.T.PYTHON, "-c", SEND_UDP, "192.0.2.1:500:192.0.2.2:500",
                    "192.0.2.1:4000:192.0.2.2:4000"])
        time.sleep(0.5)
    except BaseException:
        gw.close()
        raise
    res = gw.finish()
    out = [f for f in res.out[1] if f.type == 0x0800]
    esp = [f for f in out if IP(raw(f.payload)).proto == 50]
    clear = [IP(raw(f.payload)) for f in out if IP(raw(f.payload)).proto != 50]
    assert len(esp) == 2, res.why("%d ESP frames for 2 local pings" % len(esp))
    for i, f in enumerate(esp):
        inner = IP(check_esp_frame(f, out_sa, i + 1, "local ping %d" % i))
        assert (inner.src, inner.dst, inner.proto, inner.ttl) == ("10.1.0.1", "10.2.0.2", 1, 64), \
            res.why("inner %s" % inner.summary())
    assert [(p.src, p.dst, p[UDP].sport, bytes(p[UDP].payload)) for p in clear] == \
        [("192.0.2.1", "192.0.2.2", 500, b"dpsec-500")], \
        res.why("clear frames: %s" % [p.summary() for p in clear])
    assert res.drops("outside") == {"drop_policy": 3}, \
        res.why("outside drops %s" % res.drops("outside"))
    assert_clean(res)


# --------------------------------------------------------------------------------------
# 5: packet lifetimes: soft EXPIRE once after packet 5, hard once after 10, then drops.

def test_lifetime_packets():
    out_sa = Sa("aes-cbc-128+hmac-sha1-96", SPI_OUT, "out", False,
                extra="lifetime soft packets 5 hard packets 10")
    cfg = H.base_config([
        out_sa.line,
        "policy add src 10.1.0.0/24 dst 10.2.0.0/24 dir out action protect spi %#x" % SPI_OUT,
    ])
    plain = (inner_packets(HOST_A, HOST_B) * 2)[:15]
    frames = [frame(0, raw(p)) for p in plain]
    gw = H.LiveGateway(cfg)
    stages = {}
    try:
        gw.start()
        mon = gw.start_monitor()
        gw.inject(0, frames[:4], gap=0.02)
        gw.wait_sent()
        # three lifetime checks (100 ms apart) pass without a reason to expire
        time.sleep(0.35)
        stages["after4"] = [e for _, e in mon.events("expire")]
        gw.inject(0, frames[4:5])
        stages["soft"] = [e for _, e in mon.wait("expire", 1, timeout=3)]
        gw.inject(0, frames[5:10], gap=0.02)
        stages["hard"] = [e for _, e in mon.wait("expire", 2, timeout=3)]
        gw.inject(0, frames[10:], gap=0.02)
    except BaseException:
        gw.close()
        raise
    res = gw.finish()

    def said(e):
        x = e["expire"]
        return (H.as_text(x["sa"]["dst"]), int(x["sa"]["spi"]), bool(x.get("hard", False)))

    assert stages["after4"] == [], res.why("EXPIRE before the 5th packet: %s" % stages)
    assert [said(e) for e in stages["soft"]] == [(PEER, SPI_OUT, False)], \
        res.why("after the 5th packet: %s" % stages["soft"])
    assert [said(e) for e in stages["hard"]] == [(PEER, SPI_OUT, False), (PEER, SPI_OUT, True)], \
        res.why("after the 10th packet: %s" % stages["hard"])
    expires = [said(e) for e in res.events if "expire" in e]
    assert expires == [(PEER, SPI_OUT, False), (PEER, SPI_OUT, True)], \
        res.why("EXPIRE events over the run: %s" % expires)

    out = res.out[1]
    assert len(out) == 10, res.why("%d ESP frames left, want 10" % len(out))
    for i, (f, p) in enumerate(zip(out, plain)):
        assert check_esp_frame(f, out_sa, i + 1, "packet %d" % i) == forwarded(p)
    sa = res.sas[SPI_OUT]
    assert H.sa_drops(sa) == {"auth": 0, "replay": 0, "late": 0, "trailer": 0, "policy": 0,
                                "expired": 5, "lease": 0,
                              "other": 0}, res.why("SA drops %s" % H.sa_drops(sa))
    assert sa.get("expired_soft") is True and sa.get("expired_hard") is True, \
        res.why("show sa flags: soft %s hard %s" % (sa.get("expired_soft"),
                                                     sa.get("expired_hard")))
    assert int(sa.get("packets", 0)) == 10
    assert res.drops("inside") == {"drop_esp": 5}, res.why("drops %s" % res.drops("inside"))
    assert_clean(res)


def test_lifetime_soft_and_hard_in_one_burst():
    """Both limits passed between two lifetime checks: the soft EXPIRE (rekey) still comes,
    before the hard one; a hard-expired SA cannot be revived by `sa update`."""
    out_sa = Sa("aes-gcm-128", SPI_OUT, "out", False,
                extra="lifetime soft packets 3 hard packets 4")
    cfg = H.base_config([
        out_sa.line,
        "policy add src 10.1.0.0/24 dst 10.2.0.0/24 dir out action protect spi %#x" % SPI_OUT,
    ])
    frames = [frame(0, raw(p)) for p in inner_packets(HOST_A, HOST_B)[:8]]
    gw = H.LiveGateway(cfg)
    try:
        gw.start()
        mon = gw.start_monitor()
        gw.inject(0, frames)
        evs = [e["expire"] for _, e in mon.wait("expire", 2, timeout=3)]
        upd = gw.dp.ctl("sa", "update", "dst", PEER, "proto", "esp", "spi", "%#x" % SPI_OUT,
                        "new-dst", "192.0.2.3", check=False)
    except BaseException:
        gw.close()
        raise
    res = gw.finish()
    assert [bool(e.get("hard", False)) for e in evs] == [False, True], \
        res.why("EXPIRE events %s" % evs)
    assert upd.returncode != 0 and "hard lifetime" in upd.stdout + upd.stderr, \
        res.why("sa update of a dead SA: %d %s %s" % (upd.returncode, upd.stdout, upd.stderr))
    assert len(res.out[1]) == 4, res.why("%d ESP frames, want 4" % len(res.out[1]))
    assert_clean(res)


# --------------------------------------------------------------------------------------
# 6: NAT-T MAPPING events: an authenticated ESP-in-UDP packet from a new address or port
#    raises one MAPPING event per change of source (the SA keeps its configured peer until
#    someone updates it); a forged one none.

MAP_NEW_PORT = 34567
MAP_NEW_ADDR = "198.51.100.7"
MAP_PER_SOURCE = 4      # packets from each new source, well within one second
MAP_GAP = 0.05


def natt_from(esp_ip_bytes, src, sport):
    """A scapy-built IP/UDP/ESP packet re-sent from @src:@sport (a NAT rewrote it)."""
    ip = IP(esp_ip_bytes)
    esp = raw(ip[UDP].payload)
    return raw(IP(src=src, dst=GW, id=ip.id, ttl=ip.ttl)
               / UDP(sport=sport, dport=NATT_PORT, chksum=0) / Raw(esp))


def test_natt_mapping_events():
    in_sa = Sa("aes-gcm-128", SPI_IN, "in", True)
    out_sa = Sa("aes-gcm-128", SPI_OUT, "out", True)
    cfg = H.base_config([
        out_sa.line, in_sa.line,
        "policy add src 10.1.0.0/24 dst 10.2.0.0/24 dir out action protect spi %#x" % SPI_OUT,
        "policy add src 10.2.0.0/24 dst 10.1.0.0/24 dir in action protect spi %#x" % SPI_IN,
    ])
    P = (inner_packets(HOST_B, HOST_A) * 2)[:4 + 2 * MAP_PER_SOURCE]
    seq = iter(range(1, 100))
    sources = [(PEER, NATT_PORT)] * 4 + [(PEER, MAP_NEW_PORT)] * MAP_PER_SOURCE \
        + [(MAP_NEW_ADDR, NATT_PORT)] * MAP_PER_SOURCE
    good = [natt_from(in_sa.encrypt(p, next(seq)), s, sp) for p, (s, sp) in zip(P, sources)]
    # forged (ICV flipped), from sources nobody used: in the same burst as good packets
    # from the SA's own peer, so that a mix-up of which packet failed would show
    forged_src = [(PEER, 40001), ("198.51.100.99", NATT_PORT)]
    forged = [natt_from(in_sa.encrypt(P[0], next(seq), "icv"), s, sp) for s, sp in forged_src]
    extra_good = [natt_from(in_sa.encrypt(P[1], next(seq)), PEER, NATT_PORT),
                  natt_from(in_sa.encrypt(P[2], next(seq)), PEER, NATT_PORT)]
    mixed = [forged[0], extra_good[0], forged[1], extra_good[1]]
    # later: the last source again, well past the workers' once-a-second repeat (no new
    # event), then back to the earlier new port (a change again: one event)
    same = [natt_from(in_sa.encrypt(p, next(seq)), MAP_NEW_ADDR, NATT_PORT) for p in P[:2]]
    back = [natt_from(in_sa.encrypt(P[2], next(seq)), PEER, MAP_NEW_PORT)]
    stages, t_sent = {}, {}
    gw = H.LiveGateway(cfg)
    try:
        gw.start()
        mon = gw.start_monitor()
        gw.inject(1, [frame(1, b) for b in good[:4]], gap=MAP_GAP)
        gw.wait_sent()
        time.sleep(0.3)
        stages["own"] = [e for _, e in mon.events("mapping")]
        gw.inject(1, [frame(1, b) for b in mixed])
        gw.wait_sent()
        time.sleep(0.3)
        stages["forged"] = [e for _, e in mon.events("mapping")]
        t_sent["port"] = time.time()
        gw.inject(1, [frame(1, b) for b in good[4:4 + MAP_PER_SOURCE]], gap=MAP_GAP)
        t_sent["addr"] = time.time()
        gw.inject(1, [frame(1, b) for b in good[4 + MAP_PER_SOURCE:]], gap=MAP_GAP)
        evs = mon.wait("mapping", 2, timeout=3)
        stages["moved"] = [(t, e) for t, e in evs]
        time.sleep(1.2)
        gw.inject(1, [frame(1, b) for b in same], gap=MAP_GAP)
        gw.wait_sent()
        time.sleep(0.5)
        stages["same"] = [e for _, e in mon.events("mapping")][2:]
        gw.inject(1, [frame(1, b) for b in back])
        mon.wait("mapping", 3, timeout=3)
    except BaseException:
        gw.close()
        raise
    res = gw.finish()

    def said(e):
        m = e["mapping"]
        return (H.as_text(m["sa"]["dst"]), int(m["sa"]["spi"]), H.as_text(m["new_addr"]),
                int(m["new_port"]))

    assert stages["own"] == [], res.why("MAPPING from the SA's own peer: %s" % stages["own"])
    assert stages["forged"] == [], res.why("MAPPING for forged packets: %s" % stages["forged"])
    assert stages["same"] == [], res.why("MAPPING repeated for the same source: %s"
                                         % stages["same"])
    maps = [said(e) for e in res.events if "mapping" in e]
    assert maps == [(GW, SPI_IN, PEER, MAP_NEW_PORT), (GW, SPI_IN, MAP_NEW_ADDR, NATT_PORT),
                    (GW, SPI_IN, PEER, MAP_NEW_PORT)], \
        res.why("MAPPING events over the run: %s (all events %s)" % (maps, res.events))
    # each within a second of the first packet from its new source
    for (t, e), k in zip(stages["moved"], ("port", "addr")):
        assert t - t_sent[k] < 1.0, res.why("MAPPING %s came %.2f s late" % (e, t - t_sent[k]))

    # every authenticated packet was decrypted and delivered, whatever its source
    delivered = P[:4] + P[1:3] + P[4:] + P[:3]
    got = [raw(f.payload) for f in res.out[0]]
    assert sorted(got) == sorted(forwarded(p) for p in delivered), \
        res.why("delivered %d packets, want %d" % (len(got), len(delivered)))
    sa = res.sas[SPI_IN]
    assert int(sa.get("packets", 0)) == len(delivered), res.why("SA packets %s"
                                                                % sa.get("packets"))
    assert H.sa_drops(sa) == {"auth": 2, "replay": 0, "late": 0, "trailer": 0, "policy": 0,
                              "expired": 0, "lease": 0, "other": 0}, res.why("SA drops %s" % H.sa_drops(sa))
    assert res.drops("outside") == {"drop_esp": 2}, res.why("drops %s" % res.drops("outside"))
    assert res.out[1] == [], res.why("frames sent on the outside port")
    assert res.port("outside")["punted"] == 0, res.why("something went up the TAP")
    assert_clean(res)


# --------------------------------------------------------------------------------------
# One inbound SA fed by two workers at once (af_packet rolls a full ring over to the next
# socket; RSS may hash NAT-T ports): the replay window must stay exact under concurrency.

def gcm_esp(sa, inner, seq):
    """IP/ESP (AES-GCM-128, tunnel mode) of @inner without scapy: fast for many packets."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    pad = (-(len(inner) + 2)) % 4
    plain = inner + bytes(range(1, pad + 1)) + bytes([pad, 4])
    iv = struct.pack("!Q", seq)
    head = struct.pack("!II", sa.spi, seq)
    body = head + iv + AESGCM(sa.ek[:16]).encrypt(sa.ek[16:] + iv, plain, head)
    outer = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), seq & 0xFFFF, 0,
                                  64, 50, 0, bytes(map(int, PEER.split("."))),
                                  bytes(map(int, GW.split(".")))))
    csum = sum(struct.unpack("!10H", outer))
    csum = (csum & 0xFFFF) + (csum >> 16)
    struct.pack_into("!H", outer, 10, ~((csum & 0xFFFF) + (csum >> 16)) & 0xFFFF)
    return bytes(outer) + body


def test_two_workers_share_an_inbound_sa():
    n, block, window = 24000, 8, 1024
    in_sa = Sa("aes-gcm-128", SPI_IN, "in", False)
    cfg = H.base_config([
        in_sa.line.replace("replay-window 64", "replay-window %d" % window),
        "policy add src 10.2.0.0/24 dst 10.1.0.0/24 dir in action protect spi %#x" % SPI_IN,
    ])
    tmpl = IP(src=HOST_B, dst=HOST_A, id=0, ttl=64) / UDP(sport=7, dport=9) / Raw(bytes(24))
    queues = ([], [])
    for seq in range(1, n + 1):
        inner = IP(raw(tmpl))
        inner.id = seq & 0xFFFF
        inner[Raw].load = struct.pack("!I", seq) + bytes(20)
        del inner.chksum
        # alternate blocks: both queues walk the same numbers, each worker moves the window
        queues[(seq - 1) // block % 2].append(frame(1, gcm_esp(in_sa, raw(inner), seq)))
    res = H.PcapGateway(cfg, [[]], [queues[0], queues[1]], workers=2).run()

    sa = res.sas[SPI_IN]
    d = H.sa_drops(sa)
    got = [struct.unpack("!I", raw(f.payload)[28:32])[0] for f in res.out[0]]
    assert len(got) == len(set(got)), res.why("a sequence number was delivered twice")
    assert int(sa["packets"]) == len(got), res.why("SA packets %s, delivered %d"
                                                    % (sa["packets"], len(got)))
    # a worker that falls a window behind the other sees its numbers late, never lost
    # without a count. Known issue (README, "SA drops"): now and then rte_ipsec refuses a
    # few fresh numbers inside the window, exactly one window above numbers the same
    # worker had accepted (their bits in its 1024-bit map still set), counted as replay;
    # seen in 2 of 8 ASan runs here, 16 to 416 of 24000, none delivered twice
    assert len(got) + d["late"] + d["replay"] == n, res.why(
        "delivered %d + late %d + replay %d != %d (drops %s)"
        % (len(got), d["late"], d["replay"], n, d))
    assert d["replay"] * 20 < n, res.why("fresh numbers refused as replays: %s" % d)
    assert sum(d.values()) == d["late"] + d["replay"], res.why("drops %s" % d)
    assert int(sa.get("seq_in", 0)) == max(got), res.why("seq_in %s" % sa.get("seq_in"))
    assert_clean(res)
