"""Packets wider than the tunnel: PMTUD for DF packets, pre-fragmentation for the rest."""

import pytest

import topo as T
from topo import Topology, tunnel_pair

K_AB = "0x" + "31" * 16 + "01020304"
K_BA = "0x" + "42" * 16 + "05060708"


@pytest.fixture(scope="module")
def tunnel():
    extra = tunnel_pair(K_AB, K_BA)
    t = Topology(gwa="dpsec", gwb="dpsec", extra=extra)
    try:
        t.ping("hA", "10.2.0.2", count=3)  # resolve neighbours
        yield t
    finally:
        t.teardown()


def drops(t, gw, name):
    return t.dp(gw).stats()[1]["inside"].get(name, 0)


def test_df_packet_gets_frag_needed(tunnel):
    before = drops(tunnel, "gwA", "drop_too_big")
    p = tunnel["hA"].exec(["ping", "-n", "-c", "1", "-W", "1", "-s", "1472", "-M", "do",
                           "10.2.0.2"], check=False)
    out = p.stdout + p.stderr
    assert "Frag needed and DF set" in out, out
    # AES-GCM-128 over IPv4: 1500 - 20 - 8 - 8 - 16 = 1448 -> 1446 with the trailer aligned
    assert "mtu = 1446" in out, out
    assert drops(tunnel, "gwA", "drop_too_big") == before + 1


def test_df_packets_either_side_of_the_tunnel_mtu(tunnel):
    """1446 bytes go through whole, 1447 get "fragmentation needed": the exact limit holds
    for packets too close to the MTU to fit every SA (outbound.c groups shorter ones
    without reading their SA)."""
    tunnel["hA"].ip("route", "flush", "cache")  # the PMTU an earlier test taught hA
    got, out = tunnel.ping("hA", "10.2.0.2", count=2, extra=["-s", "1418", "-M", "do"])
    assert got == 2, out
    before = drops(tunnel, "gwA", "drop_too_big")
    p = tunnel["hA"].exec(["ping", "-n", "-c", "1", "-W", "1", "-s", "1419", "-M", "do",
                           "10.2.0.2"], check=False)
    out = p.stdout + p.stderr
    assert "Frag needed and DF set" in out and "mtu = 1446" in out, out
    assert drops(tunnel, "gwA", "drop_too_big") == before + 1


def test_non_df_packet_is_fragmented_before_encryption(tunnel):
    got, out = tunnel.ping("hA", "10.2.0.2", count=3, extra=["-s", "1472", "-M", "dont"])
    assert got == 3, out
    # both fragments of each request were encrypted with the tunnel's SA
    sa = [s for s in tunnel.dp("gwA").ctl_json("show", "sa")["sas"]
          if s["sa"]["dir"] in ("DIR_OUT", 1)]
    assert int(sa[0].get("packets", 0)) >= 6


def test_tcp_finds_the_tunnel_mtu(tunnel):
    res = T.iperf3(tunnel["hB"], tunnel["hA"], "10.2.0.2", duration=2)
    assert res["end"]["sum_received"]["bytes"] > 1_000_000
