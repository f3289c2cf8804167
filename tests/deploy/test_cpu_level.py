"""The dataplane is compiled for a CPU level (Makefile MARCH, x86-64-v3 by default): on a
CPU below it, it must say which feature is missing and exit 1, not die of SIGILL. Run
under qemu-user with real CPU models on either side of the line."""

import os
import re
import subprocess

from conftest import REPO

DATAPLANE = os.path.join(REPO, "build", "dpsec-dataplane")
REFUSAL = re.compile(r"this CPU lacks (\S+), which this build was compiled to use; "
                     r"rebuild with a lower level, e.g. make MARCH=corei7")


def under(cpu):
    assert os.access(DATAPLANE, os.X_OK), "%s is missing (make all)" % DATAPLANE
    # "--help": past the CPU check, the option parser answers and exits before EAL starts
    return subprocess.run(["qemu-x86_64", "-cpu", cpu, DATAPLANE, "--help"],
                          capture_output=True, text=True, timeout=300)


def built_level():
    """The MARCH the build used, as make would pass it."""
    p = subprocess.run(["make", "-s", "-C", REPO, "--no-print-directory", "-f", "Makefile",
                        "-f", "-", "print-march"], input="print-march:\n\t@echo $(MARCH)\n",
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def test_refuses_cpu_below_its_level_by_name():
    assert built_level() == "x86-64-v3"
    p = under("Westmere")  # SSE4.2 and POPCNT, no AVX
    m = REFUSAL.search(p.stderr)
    assert m, p.stdout + p.stderr
    assert m.group(1) == "avx"
    assert p.returncode == 1
    p = under("SandyBridge")  # AVX, no AVX2 / BMI / FMA / MOVBE
    m = REFUSAL.search(p.stderr)
    assert m and m.group(1) == "avx2", p.stdout + p.stderr
    assert p.returncode == 1


def test_starts_on_a_cpu_at_its_level():
    p = under("Haswell")  # x86-64-v3
    assert not REFUSAL.search(p.stderr), p.stderr
    assert "usage: dpsec-dataplane" in p.stdout + p.stderr, p.stdout + p.stderr
