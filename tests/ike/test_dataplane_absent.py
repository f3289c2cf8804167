"""dpsec-ike started before its dataplane: it keeps retrying with a clear log line, keeps
what charon installs meanwhile (here a trap policy) and hands it over as soon as the
dataplane answers, after flushing what an earlier dpsec-ike left there (owner ike) but
never the operator's own entries (the fail-closed baseline of the dataplane config)."""

import time

import ike
import topo as T

NET_A, NET_B = "10.1.0.0/24", "10.2.0.0/24"
HANDOVER_S = 3.0
BASELINE = "policy add src 0.0.0.0/0 dst 10.2.0.0/24 dir out action discard priority 60000"
STALE_SPI = 0xc0000123
CONFIG = """port 0 name inside
port 1 name outside
addr add 10.1.0.1/24 dev inside
addr add 192.0.2.1/24 dev outside
%s
sa add src 192.0.2.1 dst 192.0.2.9 proto esp spi %#x dir out mode tunnel \
   aead aes-gcm-128 0x000102030405060708090a0b0c0d0e0f10111213 owner ike
policy add src 10.9.0.0/24 dst 10.8.0.0/24 dir out action protect spi %#x owner ike
""" % (BASELINE, STALE_SPI, STALE_SPI)


def test_starts_without_dataplane_and_catches_up():
    tag = T.secrets.token_hex(3)
    ns = T.Netns("%s%s-gw" % (T.NS_PREFIX, tag))
    dp = daemon = None
    try:
        T.veth(ns, "v-inside", ns, "v-outside")
        dp = T.Dataplane(ns, CONFIG, ["v-inside", "v-outside"], tag + "-gw")
        daemon = ike.Daemon(ns, ike.DPSEC_IKE, ike.dpsec_ike_conf(dp.ctl_ep), ike.DPSEC_VICI,
                            "ikeX").start()
        daemon.wait_ready()
        deadline = time.monotonic() + 10
        while "unreachable" not in daemon.log_text():
            assert time.monotonic() < deadline, daemon.log_text()
            time.sleep(0.2)
        assert "dataplane at %s unreachable" % dp.ctl_ep in daemon.log_text()
        # charon goes on: a trap policy is accepted and kept for later
        daemon.load(ike.swanctl_conf("192.0.2.1", "192.0.2.2", "a", "b", NET_A, NET_B,
                                     start_action="trap"))
        assert "gw/net" in daemon.swanctl("--list-pols").stdout
        dp.start()
        dp.wait_ready()
        ready = time.monotonic()
        while True:
            pols = dp.ctl_json("show", "policy").get("policies", [])
            if len(pols) == 3 and not any(p["policy"].get("spi") for p in pols):
                break
            assert time.monotonic() - ready < HANDOVER_S, \
                "policies not handed over: %s\n%s" % (pols, daemon.log_text())
            time.sleep(0.1)
        assert sorted((p["policy"]["dir"], p["policy"]["action"], p["policy"].get("owner"))
                      for p in pols) == [("DIR_IN", "ACT_TRAP", "ike"),
                                         ("DIR_OUT", "ACT_DISCARD", None),
                                         ("DIR_OUT", "ACT_TRAP", "ike")], pols
        assert dp.ctl_json("show", "sa").get("sas", []) == [], "stale SA of an earlier run kept"
        assert "is back" in daemon.log_text()
        assert daemon.alive()
    finally:
        if daemon is not None:
            daemon.stop()
            T.shutil.rmtree(daemon.dir, ignore_errors=True)
        if dp is not None:
            dp.stop()
            dp.cleanup_dir()
        ns.delete()
