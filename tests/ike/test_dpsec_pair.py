"""dpsec-ike against dpsec-ike: two dpsec gateways, nothing forces NAT-T, so plain ESP
(protocol 50) crosses the wire and each dataplane decrypts what the other encrypted.

    hA 10.1.0.2 -- gwA [dpsec] 192.0.2.1 ==== 192.0.2.2 [dpsec] gwB -- hB 10.2.0.2
"""

import time

import topo as T
from test_interop import (GWB_OUT, HA, HB, NET_A, NET_B, RESUME_S, SEQ_MARGIN,
                          conf_a, conf_b, dp_policies, dp_sas, one_child, ping_all, ping_until)


def assert_mirrored(gw, child_a):
    """gwA's outbound SA is gwB's inbound one and the reverse, plain ESP on both."""
    sa_a, sa_b = dp_sas(gw.dp), dp_sas(gw.dp_b)
    spi_in, spi_out = child_a["in"]["spi"], child_a["out"]["spi"]
    assert set(sa_a) == set(sa_b) == {spi_in, spi_out}, (sa_a, sa_b)
    assert sa_a[spi_out]["dir"] == "DIR_OUT" and sa_b[spi_out]["dir"] == "DIR_IN"
    assert sa_a[spi_in]["dir"] == "DIR_IN" and sa_b[spi_in]["dir"] == "DIR_OUT"
    assert sa_a[spi_out]["dst"] == sa_b[spi_out]["dst"] == GWB_OUT
    for sas in (sa_a, sa_b):
        for sa in sas.values():
            assert not sa["encap"], "no NAT here, yet UDP encapsulation: %s" % sa
    assert ("DIR_OUT", NET_B, NET_A, "ACT_PROTECT", spi_in) in dp_policies(gw.dp_b)
    return sa_a, sa_b


def establish(gw):
    gw.a.load(conf_a())
    gw.b.load(conf_b())
    gw.a.initiate("net")
    return one_child(gw.a)


def test_pair_psk_plain_esp(gw_pair):
    gw = gw_pair
    _, child = establish(gw)
    assert child["mode"] == "TUNNEL", child
    ping_until(gw.topo, "hA", HB)
    ping_all(gw.topo, "hA", HB)
    ping_all(gw.topo, "hB", HA)
    sa_a, sa_b = assert_mirrored(gw, child)
    out = child["out"]["spi"]
    assert sa_a[out]["packets"] >= 5 and sa_b[out]["packets"] >= 5, (sa_a, sa_b)
    for node in ("gwA", "gwB"):
        assert gw.topo[node].ip("xfrm", "state").stdout.strip() == ""


def test_pair_peer_dataplane_restart(gw_pair):
    """gwB's dataplane restarts: gwB's dpsec-ike resyncs; gwA's replay window accepts gwB's
    outbound sequence numbers, which resume above the margin."""
    gw = gw_pair
    if not gw.a.list_sas():
        establish(gw)
    ping_until(gw.topo, "hA", HB)
    _, child = one_child(gw.a)
    _, child_b = one_child(gw.b)
    gw.dp_b.proc.kill()
    gw.dp_b.proc.wait(timeout=10)
    T.remove_dpdk_files(gw.dp_b.file_prefix)
    gw.dp_b.start()
    gw.dp_b.wait_ready()
    ready = time.monotonic()
    ping_until(gw.topo, "hB", HA, timeout=10)
    assert time.monotonic() - ready <= RESUME_S + 1.0
    ping_all(gw.topo, "hA", HB)
    _, after = one_child(gw.a)
    _, after_b = one_child(gw.b)
    assert (after["id"], after["in"]["spi"], after["out"]["spi"]) == (
        child["id"], child["in"]["spi"], child["out"]["spi"]), "gwA's CHILD_SA changed"
    assert after_b["id"] == child_b["id"], "gwB's CHILD_SA changed"
    sa_a, sa_b = assert_mirrored(gw, after)
    assert sa_b[child["in"]["spi"]]["seq_out"] > SEQ_MARGIN, sa_b
    gw.a.terminate_ike("gw")
    deadline = time.monotonic() + 5
    while (dp_sas(gw.dp) or dp_sas(gw.dp_b)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert dp_sas(gw.dp) == {} and dp_sas(gw.dp_b) == {}
