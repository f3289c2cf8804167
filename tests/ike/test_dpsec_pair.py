"""dpsec-ike against dpsec-ike: two dpsec gateways, nothing forces NAT-T, so plain ESP
(protocol 50) crosses the wire and each dataplane decrypts what the other encrypted.

    hA 10.1.0.2 -- gwA [dpsec] 192.0.2.1 ==== 192.0.2.2 [dpsec] gwB -- hB 10.2.0.2
"""

import time

import pytest

import topo as T
from test_interop import (GWA_OUT, GWB_OUT, HA, HB, NATT_PORT, NET_A, NET_B, RESUME_S,
                          SEQ_LEASE, conf_a, conf_b, dp_drops, dp_policies, dp_sas,
                          first_reply, one_child, ping_all, ping_until)


def assert_mirrored(gw, child_a, encap=False):
    """gwA's outbound SA is gwB's inbound one and the reverse; plain ESP on both, or with
    @encap ESP in UDP 4500:4500 on both."""
    sa_a, sa_b = dp_sas(gw.dp), dp_sas(gw.dp_b)
    spi_in, spi_out = child_a["in"]["spi"], child_a["out"]["spi"]
    assert set(sa_a) == set(sa_b) == {spi_in, spi_out}, (sa_a, sa_b)
    assert sa_a[spi_out]["dir"] == "DIR_OUT" and sa_b[spi_out]["dir"] == "DIR_IN"
    assert sa_a[spi_in]["dir"] == "DIR_IN" and sa_b[spi_in]["dir"] == "DIR_OUT"
    assert sa_a[spi_out]["dst"] == sa_b[spi_out]["dst"] == GWB_OUT
    for sas in (sa_a, sa_b):
        for sa in sas.values():
            if encap:
                enc = sa["encap"]
                assert enc and (int(enc["sport"]), int(enc["dport"])) == (
                    NATT_PORT, NATT_PORT), "not encap udp 4500:4500: %s" % sa
            else:
                assert not sa["encap"], "no NAT here, yet UDP encapsulation: %s" % sa
    assert ("DIR_OUT", NET_B, NET_A, "ACT_PROTECT", spi_in) in dp_policies(gw.dp_b)
    return sa_a, sa_b


def establish(gw, a_extra={}, b_extra={}):
    gw.a.load(conf_a(**a_extra))
    gw.b.load(conf_b(**b_extra))
    gw.a.initiate("net")
    return one_child(gw.a)


def terminate(gw):
    gw.a.terminate_ike("gw")
    deadline = time.monotonic() + 5
    while (dp_sas(gw.dp) or dp_sas(gw.dp_b)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert dp_sas(gw.dp) == {} and dp_sas(gw.dp_b) == {}
    assert dp_policies(gw.dp) == [] and dp_policies(gw.dp_b) == []


@pytest.fixture
def pair(gw_pair):
    """Every test ends without IKE_SAs on either side, even when it failed half-way
    (a left-over SA would make the next test's initiate a duplicate)."""
    yield gw_pair
    for d in (gw_pair.a, gw_pair.b):
        if d.alive() and d.list_sas():
            d.swanctl("--terminate", "--ike", "gw", "--timeout", "5", check=False, timeout=15)


def pair_flow(gw, seconds, interval=0.05):
    """hA pings hB continuously: every echo answered, neither dataplane drops anything."""
    count = int(seconds / interval)
    before = (dp_drops(gw.dp), dp_drops(gw.dp_b))
    got, out = gw.topo.ping("hA", HB, count=count, wait=1, extra=("-i", str(interval), "-O"),
                            timeout=seconds + 30)
    after = (dp_drops(gw.dp), dp_drops(gw.dp_b))
    assert got == count, "lost %d of %d pings:\n%s" % (count - got, count, "\n".join(
        l for l in out.splitlines() if "no answer" in l) or out[-400:])
    assert after == before, "dataplane drops (gwA, gwB): %s -> %s" % (before, after)


def test_pair_psk_plain_esp(pair):
    gw = pair
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


def test_pair_peer_dataplane_restart(pair):
    """gwB's dataplane restarts: gwB's dpsec-ike resyncs; gwA's replay window accepts gwB's
    outbound sequence numbers, which resume at the lease gwB's dpsec-ike had recorded."""
    gw = pair
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
    first_reply(gw.topo, "hB", HA, timeout=10)
    resumed = time.monotonic() - ready
    assert resumed <= RESUME_S + 0.5, "traffic resumed %.1f s after the dataplane was ready" \
        % resumed
    ping_all(gw.topo, "hA", HB)
    _, after = one_child(gw.a)
    _, after_b = one_child(gw.b)
    assert (after["id"], after["in"]["spi"], after["out"]["spi"]) == (
        child["id"], child["in"]["spi"], child["out"]["spi"]), "gwA's CHILD_SA changed"
    assert after_b["id"] == child_b["id"], "gwB's CHILD_SA changed"
    sa_a, sa_b = assert_mirrored(gw, after)
    assert sa_b[child["in"]["spi"]]["seq_out"] >= SEQ_LEASE, sa_b
    gw.a.terminate_ike("gw")
    deadline = time.monotonic() + 5
    while (dp_sas(gw.dp) or dp_sas(gw.dp_b)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert dp_sas(gw.dp) == {} and dp_sas(gw.dp_b) == {}


PAIR_REKEY_S = 3


def test_pair_child_rekey_zero_loss(pair):
    """gwB rekeys the CHILD_SA (its rekey_time), so gwA's dpsec-ike is the rekey responder:
    it installs the new outbound SA at once but moves the outbound policy only when gwB's
    DELETE arrives. A continuous ping across two rekeys loses nothing on either dataplane."""
    gw = pair
    lifetimes = ("rekey_time = %ds\n\t\t\t\tlife_time = 60s\n\t\t\t\trand_time = 0s"
                 % PAIR_REKEY_S)
    _, child = establish(gw, b_extra={"child_extra": lifetimes})
    ping_until(gw.topo, "hA", HB)
    pair_flow(gw, 2 * PAIR_REKEY_S + 2)
    deadline = time.monotonic() + PAIR_REKEY_S
    while True:
        _, after = one_child(gw.a)
        try:
            assert after["id"] >= child["id"] + 2, "not rekeyed twice: %s -> %s" % (child, after)
            assert_mirrored(gw, after)
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    terminate(gw)


def test_pair_forced_encap(pair):
    """encap = yes on gwA: both sides pretend to be NATed, so the CHILD_SA is ESP in UDP 4500
    on both dataplanes, and each still decrypts what the other encrypted."""
    gw = pair
    _, child = establish(gw, a_extra={"conn_extra": "encap = yes"})
    assert child["mode"] == "TUNNEL-in-UDP", child
    ping_until(gw.topo, "hA", HB)
    ping_all(gw.topo, "hA", HB)
    ping_all(gw.topo, "hB", HA)
    sa_a, sa_b = assert_mirrored(gw, child, encap=True)
    out = child["out"]["spi"]
    assert sa_a[out]["packets"] >= 5 and sa_b[out]["packets"] >= 5, (sa_a, sa_b)
    _, child_b = one_child(gw.b)
    assert child_b["mode"] == "TUNNEL-in-UDP", child_b
    terminate(gw)


GWB_OUT2 = "192.0.2.3"


def wait_local_addr(dp, addr, present=True, timeout=5.0):
    deadline = time.monotonic() + timeout
    while (addr in dp.ctl("show", "addr").stdout) != present:
        assert time.monotonic() < deadline, "%s %s in the dataplane's addresses" % (
            addr, "not" if present else "still")
        time.sleep(0.2)


def sa_update(dp, dst, spi, *change):
    dp.ctl("sa", "update", "dst", dst, "proto", "esp", "spi", "0x%08x" % spi, *change)


def test_pair_sa_update_moves_peer(pair):
    """update_sa's dataplane path (SaUpdate, as dpsec-ike sends it for a NAT mapping change or
    MOBIKE) on a live NAT-T tunnel: gwB gets a second address and the hA -> hB SA moves to it on
    both sides; the outbound policy follows its SA, the flow goes on to the new address, and
    moving back and terminating leaves both dataplanes empty."""
    gw = pair
    _, child = establish(gw, a_extra={"conn_extra": "encap = yes"})
    ping_until(gw.topo, "hA", HB)
    spi = child["out"]["spi"]
    gw.topo["gwB"].ip("addr", "add", GWB_OUT2 + "/24", "dev", "dp-outside")
    try:
        wait_local_addr(gw.dp_b, GWB_OUT2)
        # gwA resolves the new next hop first: an unresolved one drops (and counts) packets
        gw.topo["gwA"].exec(["ping", "-n", "-c", "1", "-W", "2", GWB_OUT2])
        counted = (dp_sas(gw.dp)[spi]["packets"], dp_sas(gw.dp_b)[spi]["packets"])
        assert min(counted) >= 1, counted
        # receiver first, so nothing is sent to an address without the SA
        sa_update(gw.dp_b, GWB_OUT, spi, "new-dst", GWB_OUT2)
        sa_update(gw.dp, GWB_OUT, spi, "new-dst", GWB_OUT2)
        sa_a, sa_b = dp_sas(gw.dp), dp_sas(gw.dp_b)
        assert sa_a[spi]["dst"] == sa_b[spi]["dst"] == GWB_OUT2, (sa_a, sa_b)
        # the same SA under a new identity: its counters (and so its volume lifetimes) go on
        assert sa_a[spi]["packets"] >= counted[0] and sa_b[spi]["packets"] >= counted[1], (
            counted, sa_a, sa_b)
        assert sa_a[spi]["encap"] and int(sa_a[spi]["encap"]["dport"]) == NATT_PORT, sa_a
        pkts_a, pkts_b = sa_a[spi]["packets"], sa_b[spi]["packets"]
        pair_flow(gw, 2)
        sa_a, sa_b = dp_sas(gw.dp), dp_sas(gw.dp_b)
        assert sa_a[spi]["packets"] >= pkts_a + 40 and sa_b[spi]["packets"] >= pkts_b + 40, (
            sa_a, sa_b)
        # the encapsulation ports change the same way (a NAT mapping update)
        sa_update(gw.dp, GWB_OUT2, spi, "encap", "udp", "sport", str(NATT_PORT), "dport",
                  str(NATT_PORT))
        pair_flow(gw, 1)
        sa_update(gw.dp_b, GWB_OUT2, spi, "new-dst", GWB_OUT)
        sa_update(gw.dp, GWB_OUT2, spi, "new-dst", GWB_OUT)
        pair_flow(gw, 1)
        assert_mirrored(gw, child, encap=True)
    finally:
        gw.topo["gwB"].ip("addr", "del", GWB_OUT2 + "/24", "dev", "dp-outside", check=False)
    terminate(gw)


def wait_encap(dp, spi, sport, dport, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        sa = dp_sas(dp).get(spi)
        enc = sa and sa["encap"]
        if enc and (int(enc["sport"]), int(enc["dport"])) == (sport, dport):
            return sa
        assert time.monotonic() < deadline, "SA %08x not encap udp %d:%d: %s" % (
            spi, sport, dport, sa)
        time.sleep(0.2)


def test_pair_nat_mapping_follows(pair):
    """A NAT rebinding without a NAT: gwA's outbound SA gets a new UDP source port (dpsecctl sa
    update), so gwB's dataplane sees authenticated ESP from 192.0.2.1:4501, raises MAPPING;
    gwB's dpsec-ike hands it to charon, whose update_sa moves gwB's SAs to the new port
    through SaUpdate. Moving the port back heals the tunnel the same way."""
    gw = pair
    _, child = establish(gw, a_extra={"conn_extra": "encap = yes"})
    ping_until(gw.topo, "hA", HB)
    a_out, a_in = child["out"]["spi"], child["in"]["spi"]
    moved = NATT_PORT + 1
    sa_update(gw.dp, GWB_OUT, a_out, "encap", "udp", "sport", str(moved), "dport",
              str(NATT_PORT))
    before = dp_sas(gw.dp_b)[a_out]["packets"]
    assert before >= 1
    gw.topo.ping("hA", HB, count=3, wait=1, extra=("-i", "0.2"))
    # gwB: its inbound SA expects the peer at port 4501, its outbound SA sends there
    wait_encap(gw.dp_b, a_out, moved, NATT_PORT)
    wait_encap(gw.dp_b, a_in, NATT_PORT, moved)
    # the echoes from the new port were decrypted all along, and the SA's counters
    # carried over its update
    assert dp_sas(gw.dp_b)[a_out]["packets"] >= before + 3, dp_sas(gw.dp_b)
    assert "NAT mapping of SA %.8x changed to %s[%d]" % (a_out, GWA_OUT, moved) in \
        gw.b.log_text(), gw.b.log_text()[-3000:]
    # back to 4500: gwA's replies flow again once gwB follows
    sa_update(gw.dp, GWB_OUT, a_out, "encap", "udp", "sport", str(NATT_PORT), "dport",
              str(NATT_PORT))
    gw.topo.ping("hA", HB, count=2, wait=1, extra=("-i", "0.2"))
    wait_encap(gw.dp_b, a_in, NATT_PORT, NATT_PORT)
    ping_until(gw.topo, "hA", HB)
    ping_all(gw.topo, "hA", HB)
    ping_all(gw.topo, "hB", HA)
    assert_mirrored(gw, child, encap=True)
    terminate(gw)
