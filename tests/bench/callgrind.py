"""Instructions a packet, by function, for one benchmark case (valgrind --tool=callgrind).

    /usr/bin/python3 tests/bench/callgrind.py decrypt aes-gcm-128 64 1 [--seconds 20]

The same dataplane, pcap, config and vdevs as `make bench`, run under callgrind with
collection on inside the worker loop only; the counts are divided by the packets the
output port sent. Unlike perf's samples on this shared VM, the counts repeat exactly for
the same binary and input, so a change that removes instructions shows as such. Valgrind
hides AVX-512 from the program: ipsec-mb and dpsec's own GCM take their AVX2/AES-NI code.
Needs `make all`, valgrind and hugepages (deploy/hugepages.sh), as root.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench  # noqa: E402
import dataplane_bench as db  # noqa: E402
import pcapgen  # noqa: E402

FN_LINE = re.compile(r"^(?:\([ \d.]+%\)\s+)?(?:\S+:)?([\w.]+)(?: \[(\S+)\])?$")


def main():
    ap = argparse.ArgumentParser()
    bench.add_case_arguments(ap)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--keep", help="write the callgrind output here")
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="dpb-cg-")
    out = a.keep or os.path.join(work, "callgrind.out")
    wrapper = os.path.join(work, "dataplane-under-callgrind")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec valgrind --tool=callgrind --fair-sched=yes --callgrind-out-file=%s "
                "--collect-atstart=no --toggle-collect=worker_main %s \"$@\"\n"
                % (out, db.DATAPLANE))
    os.chmod(wrapper, 0o755)
    ns = db.Netns("dpb-cg")
    dp = None
    try:
        empty = os.path.join(work, "empty.pcap")
        pcapgen.write_pcap(empty, [])
        mac = db.discover_mac(ns, "cg-mac", a.direction, empty, work)
        pcap = bench.pcap_path(work, a.direction, a.algo, a.size, a.sas, mac)
        conf = pcapgen.config(a.direction, a.algo, a.sas, bench.DECRYPT_REPLAY_WINDOW)
        db.DATAPLANE, real = wrapper, db.DATAPLANE
        db.READY_TIMEOUT = 600.0
        dp = db.Dataplane(ns, "cg", conf, db.vdevs(a.direction, pcap), work)
        dp.start()
        time.sleep(a.seconds)
        out_port = "outside" if a.direction == "encrypt" else "inside"
        sent = None
        for _ in range(10):  # valgrind runs one thread at a time: the control thread waits
            try:
                sent = dp.ports()[out_port]["counters"].get("tx", 0)
                break
            except RuntimeError:
                pass
        if sent is None:
            sys.exit("callgrind: the dataplane under valgrind never answered")
        dp.stop()
        db.DATAPLANE = real
        if not sent:
            sys.exit("callgrind: no packet left the %s port" % out_port)
        rep = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", out],
                             capture_output=True, text=True, check=True).stdout
        total, by_fn = 0, {}
        for line in rep.splitlines():
            parts = line.split(None, 1)
            if len(parts) < 2 or not parts[0].replace(",", "").isdigit():
                continue
            ir, what = int(parts[0].replace(",", "")), parts[1]
            if "PROGRAM TOTALS" in what:
                total = ir
                continue
            # "(share) file:function [object]"; inlined code is filed under its header
            m = FN_LINE.match(what)
            if m is None:
                continue  # call-tree and source lines
            key = m.group(1)
            by_fn[key] = by_fn.get(key, 0) + ir
        print("%s %s %s %d SA: %d packets sent, %.0f instructions a packet in the worker"
              % (a.direction, a.algo, a.size, a.sas, sent, total / sent))
        for name, ir in sorted(by_fn.items(), key=lambda kv: -kv[1])[:a.top]:
            print("%8.1f  %s" % (ir / sent, name))
    finally:
        if dp is not None:
            dp.stop()
            dp.cleanup()
        ns.delete()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
