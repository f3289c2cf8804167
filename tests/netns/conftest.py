"""pytest fixtures for the netns topology (see topo.py)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import topo as T  # noqa: E402

LOG_TAIL_LINES = 300
_active = []  # topologies / dataplanes whose logs a failing test should show


def pytest_configure(config):
    if os.geteuid() != 0:
        raise pytest.UsageError("tests/netns need root (network namespaces, hugepages)")


@pytest.fixture(scope="module")
def topo():
    """hA -- gwA (dpsec, or kernel with DPT_GWA_KERNEL=1) -- gwB (kernel) -- hB."""
    kind = "kernel" if T.kernel_gwa_requested() else "dpsec"
    t = T.Topology(gwa=kind, gwb="kernel")
    _active.append(t)
    yield t
    _active.remove(t)
    t.teardown()


@pytest.fixture
def gwa(topo):
    """gwA's dataplane, checked alive before the test uses it."""
    dp = topo.dp("gwA")
    if dp is None:
        # Only in the DPT_GWA_KERNEL harness self-test: there is no dataplane to ask.
        pytest.skip("gwA is a kernel router (DPT_GWA_KERNEL=1)")
    assert dp.alive(), "gwA dataplane died before this test:\n" + dp.log_text()
    return dp


@pytest.fixture
def spare_dataplane():
    """Factory for a standalone dataplane in its own namespace (e.g. bad-config tests)."""
    made = []

    def make(config_text):
        tag = T.secrets.token_hex(3)
        ns = T.Netns("%s%s-gw" % (T.NS_PREFIX, tag))
        made.append((ns, None))
        T.veth(ns, "v-inside", ns, "v-outside")
        for ifname in ("v-inside", "v-outside"):
            ns.sysctl("net.ipv6.conf.%s.disable_ipv6" % ifname, "1")
        dp = T.Dataplane(ns, config_text, ["v-inside", "v-outside"], tag + "-gw")
        made[-1] = (ns, dp)
        _active.append(dp)
        return dp

    yield make
    for ns, dp in made:
        if dp is not None:
            _active.remove(dp)
            dp.stop()
            dp.cleanup_dir()
        ns.delete()


def _tail(text):
    lines = text.splitlines()
    return "\n".join(lines[-LOG_TAIL_LINES:])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    for obj in _active:
        if isinstance(obj, T.Topology):
            for node, text in obj.logs().items():
                rep.sections.append(("dataplane %s log (%s)" % (node, obj.tag), _tail(text)))
        else:
            rep.sections.append(("dataplane log (%s)" % obj.file_prefix, _tail(obj.log_text())))
