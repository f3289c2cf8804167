# SPDX-License-Identifier: BSD-3-Clause
"""pytest for the ESP building blocks: builds build/tests/esp_test, runs its
SAD self-test and the scapy cross-check (tests/esp/check_esp.py).

    /usr/bin/python3 -m pytest -q tests/esp/test_esp_blocks.py
"""
import os
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(ROOT, "build", "tests", "esp_test")
EAL = ["--no-huge", "-m", "512", "--no-pci", "--log-level=lib.*:warning"]


@pytest.fixture(scope="session", autouse=True)
def built():
    subprocess.run(["make", "-C", ROOT, "build/tests/esp_test"], check=True,
                   capture_output=True)


def run(*args, timeout=600):
    return subprocess.run([BIN] + EAL + ["--file-prefix", f"esptest{os.getpid()}", "--"]
                          + list(args), capture_output=True, text=True, timeout=timeout)


def test_sad_selftest():
    r = run("selftest")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "selftest passed" in r.stdout


def test_scapy_cross_check(tmp_path):
    r = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "tests/esp/check_esp.py"),
                        "--bin", BIN, "--dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-2000:]
    assert "check_esp: passed" in r.stdout
    # every crypto path and both ipsec-mb PMDs were exercised
    assert "'ipsec-mb'" in r.stdout and "'cpu'" in r.stdout and "'lookaside'" in r.stdout
    assert "crypto_aesni_gcm" in r.stdout and "crypto_aesni_mb" in r.stdout


def test_bench_smoke():
    r = run("bench", "0.05")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("bench dir=") == 6
