"""dpsec-ike started before its dataplane: it keeps retrying with a clear log line, keeps
what charon installs meanwhile (here a trap policy) and hands it over, after flushing, as
soon as the dataplane answers."""

import time

import ike
import topo as T

NET_A, NET_B = "10.1.0.0/24", "10.2.0.0/24"
HANDOVER_S = 3.0
CONFIG = """port 0 name inside
port 1 name outside
addr add 10.1.0.1/24 dev inside
addr add 192.0.2.1/24 dev outside
"""


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
            if len(pols) == 2:
                break
            assert time.monotonic() - ready < HANDOVER_S, \
                "policies not handed over: %s\n%s" % (pols, daemon.log_text())
            time.sleep(0.1)
        assert sorted((p["policy"]["dir"], p["policy"]["action"]) for p in pols) == [
            ("DIR_IN", "ACT_TRAP"), ("DIR_OUT", "ACT_TRAP")]
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
