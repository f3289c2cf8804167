"""Profile one benchmark case: where the worker lcore spends its cycles.

    /usr/bin/python3 tests/bench/profile.py encrypt aes-gcm-128 64 1 [--seconds 5]

Starts the dataplane exactly as `make bench` does for that case (same pcap, config and
vdevs), samples the worker thread with `perf record -e cpu-clock` (a software clock: this
VM has no hardware counters) and prints `perf report` by symbol, plus the Mpps measured
over the same window. Needs `make all` and hugepages (deploy/hugepages.sh), as root.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench  # noqa: E402
import dataplane_bench as db  # noqa: E402
import pcapgen  # noqa: E402


def worker_tid(pid):
    """The EAL worker thread of the dataplane (DPDK 22.11 names it rte-worker-N)."""
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
            if f.read().startswith(("rte-worker", "lcore-worker")):
                return int(tid)
    raise RuntimeError("no rte-worker thread in pid %d" % pid)


def main():
    ap = argparse.ArgumentParser()
    bench.add_case_arguments(ap)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--callgraph", action="store_true", help="perf record -g")
    ap.add_argument("--keep", help="write perf.data here instead of a temporary file")
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="dpb-prof-")
    ns = db.Netns("dpb-prof")
    dp = None
    try:
        mac = db.discover_mac(ns, "prof-mac", a.direction, _dummy_pcap(work), work)
        pcap = bench.pcap_path(work, a.direction, a.algo, a.size, a.sas, mac)
        conf = pcapgen.config(a.direction, a.algo, a.sas, bench.DECRYPT_REPLAY_WINDOW)
        dp = db.Dataplane(ns, "prof", conf, db.vdevs(a.direction, pcap), work)
        dp.start()
        time.sleep(a.warmup)
        out_port = "outside" if a.direction == "encrypt" else "inside"
        data = a.keep or os.path.join(work, "perf.data")
        tid = worker_tid(dp.proc.pid if not _is_wrapper(dp.proc.pid) else _child(dp.proc.pid))
        c0 = dp.ports()[out_port]["counters"].get("tx", 0)
        t0 = time.monotonic()
        subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-F", "4999", "-t", str(tid),
                        "-o", data] + (["-g"] if a.callgraph else [])
                       + ["--", "sleep", str(a.seconds)], check=True)
        c1 = dp.ports()[out_port]["counters"].get("tx", 0)
        mpps = (c1 - c0) / (time.monotonic() - t0) / 1e6
        for sort, limit in (("dso", "0.5"), ("dso,sym", "0.3")):
            rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                                  "--sort", sort, "--percent-limit", limit],
                                 capture_output=True, text=True)
            print("\n".join(l for l in rep.stdout.splitlines() if l and not l.startswith("#")))
        print("%s %s %s %d SA: %.3f Mpps while sampled (perf itself costs a little)"
              % (a.direction, a.algo, a.size, a.sas, mpps))
    finally:
        if dp is not None:
            dp.stop()
            dp.cleanup()
        ns.delete()
        subprocess.run(["rm", "-rf", work])


def _dummy_pcap(work):
    """discover_mac only needs a readable pcap for the input port."""
    path = os.path.join(work, "empty.pcap")
    pcapgen.write_pcap(path, [])
    return path


def _is_wrapper(pid):
    with open("/proc/%d/comm" % pid) as f:
        return not f.read().startswith("dpsec-dataplane")


def _child(pid):
    """`ip netns exec` execs the dataplane in place; should it ever fork, follow it."""
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        return int(f.read().split()[0])


if __name__ == "__main__":
    main()
