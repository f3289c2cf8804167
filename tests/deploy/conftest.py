"""pytest setup for tests/deploy: make install, systemd units, dpsec-mesh and the 3-site mesh."""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
for sub in ("deploy/demo", "tests/netns", "tests/ike"):
    sys.path.insert(0, os.path.join(REPO, sub))

LOG_TAIL_LINES = 200
_active = []  # meshes whose logs a failing test should show


def pytest_configure(config):
    if os.geteuid() != 0:
        raise pytest.UsageError("tests/deploy need root (network namespaces, hugepages)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    for m in _active:
        for name, text in m.logs().items():
            rep.sections.append((name, "\n".join(text.splitlines()[-LOG_TAIL_LINES:])))
