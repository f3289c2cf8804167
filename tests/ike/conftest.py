"""pytest fixtures for the IKE interop tests (see ike.py and ../netns/topo.py)."""

import os
import sys

import pytest

HERE = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(HERE, "..", "netns"))
sys.path.insert(0, HERE)
import topo as T  # noqa: E402
import ike  # noqa: E402

LOG_TAIL_LINES = 200
_active = []  # gateways whose logs a failing test should show


def pytest_configure(config):
    if os.geteuid() != 0:
        raise pytest.UsageError("tests/ike need root (network namespaces, hugepages)")


class Gateways:
    """hA -- gwA (dpsec-dataplane + dpsec-ike) -- gwB -- hB, where gwB is a kernel router
    with Debian's stock charon (kernel-libipsec), or another dpsec gateway (@gwb="dpsec")."""

    def __init__(self, gwb="kernel"):
        if gwb == "kernel" and not os.path.exists("/dev/net/tun"):
            raise AssertionError("/dev/net/tun is missing: the stock peer's kernel-libipsec "
                                 "needs a TUN device")
        self.topo = T.Topology(gwa="dpsec", gwb=gwb)
        try:
            self.dp = self.topo.dp("gwA")
            self.dp_b = self.topo.dp("gwB")
            self.a = ike.Daemon(self.topo["gwA"], ike.DPSEC_IKE,
                                ike.dpsec_ike_conf(self.dp.ctl_ep), ike.DPSEC_VICI, "ikeA")
            if gwb == "kernel":
                # gwB's kernel sends IKE (UDP) to gwA's af_packet port: like the hosts (see
                # topo.py) it must fill in L4 checksums itself, or gwA's kernel drops them.
                self.topo["gwB"].exec(["ethtool", "-K", "dp-outside", "tx", "off"])
                self.b = ike.Daemon(self.topo["gwB"], ike.STOCK_CHARON,
                                    ike.stock_charon_conf(), ike.STOCK_VICI, "ikeB")
            else:
                self.b = ike.Daemon(self.topo["gwB"], ike.DPSEC_IKE,
                                    ike.dpsec_ike_conf(self.dp_b.ctl_ep), ike.DPSEC_VICI,
                                    "ikeB")
            self.a.start()
            self.b.start()
            self.a.wait_ready()
            self.b.wait_ready()
        except BaseException:
            self.teardown()
            raise

    def logs(self):
        out = {"dataplane %s" % n: dp.log_text() for n, dp in self.topo.dataplanes.items()}
        for name, d in (("IKE daemon gwA", getattr(self, "a", None)),
                        ("IKE daemon gwB", getattr(self, "b", None))):
            if d is not None:
                out[name] = d.log_text()
        return out

    def teardown(self):
        for d in (getattr(self, "a", None), getattr(self, "b", None)):
            if d is not None:
                try:
                    d.stop()
                except Exception:
                    pass
        self.topo.teardown()
        for d in (getattr(self, "a", None), getattr(self, "b", None)):
            if d is not None:
                T.shutil.rmtree(d.dir, ignore_errors=True)


def _gateways(gwb):
    g = Gateways(gwb)
    _active.append(g)
    yield g
    _active.remove(g)
    g.teardown()


@pytest.fixture(scope="module")
def gw():
    """gwA dpsec, gwB Debian's charon with kernel-libipsec."""
    yield from _gateways("kernel")


@pytest.fixture(scope="module")
def gw_pair():
    """Two dpsec gateways, each with dpsec-ike."""
    yield from _gateways("dpsec")


def _tail(text):
    return "\n".join(text.splitlines()[-LOG_TAIL_LINES:])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    for g in _active:
        for name, text in g.logs().items():
            rep.sections.append((name, _tail(text)))
