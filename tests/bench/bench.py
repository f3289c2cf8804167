"""`make bench` driver: dataplane matrix + crypto-only ceilings + scapy checks (+ e2e).

Writes OUT/results.json and OUT/results.md and prints the table. See README "## Benchmark".
"""

import argparse
import datetime
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cryptoperf  # noqa: E402
import dataplane_bench  # noqa: E402
import pcapgen  # noqa: E402
import secgw  # noqa: E402
import verify  # noqa: E402

ALGOS = ["aes-gcm-128", "aes-gcm-256", "aes-cbc-128+hmac-sha256"]
SIZES = [64, 512, 1400, "imix"]
SA_COUNTS = [1, 10000]
# Looped pcap lengths: 10k SAs need a frame per flow; IMIX needs a multiple of 12.
# net_pcap copies every frame from the looped pcap, a read no NIC makes (it writes by
# DMA). 120 frames stay in L2 (about 200 kB at 1400 B); 1200 did not, and the copy's
# misses then took a fifth of the 1400-B decrypt time. At 12000 frames (16 MB) nothing
# fits: the 10k / 1 SA ratio therefore compares against a second 1-SA run over the same
# 12000 frames ("sa1w"), so it measures the SAs, not the copy.
FRAMES = {1: 120, 10000: 12000}
WIDE = "sa1w"
DIRECTIONS = ["encrypt", "decrypt"]
# The decrypt loop replays the same sequence numbers every pass.
DECRYPT_REPLAY_WINDOW = 0

# Issue 5's targets: (direction, size) -> share of the crypto-only ceiling at 1 SA.
TARGETS = {("encrypt", 64): 0.56, ("decrypt", 64): 0.53,
           ("encrypt", 1400): 0.63, ("decrypt", 1400): 0.62}
TARGET_10K = 0.90
# The same targets as the issue derives them: dpsec / ipsec-secgw at 1 SA, same run.
TARGETS_SECGW = {64: 1.3, 1400: 1.1}
SECGW_ALGOS = ("aes-gcm-128",)
# dpsec / ipsec-secgw pairs for the target cases (TARGETS_SECGW sizes), each pair back to
# back, which one first alternating: this host's speed drifts 10-30 % within minutes and
# moves both runs of a pair together, so the median of the pairs' ratios stands beside the
# best-sample ratio (tests/bench/ab.py's method).
SECGW_PAIRS = 3
TARGET_E2E_TCP = 4.0


def add_case_arguments(ap):
    """One benchmark case on a tool's command line (profile.py, callgrind.py)."""
    ap.add_argument("direction", choices=DIRECTIONS)
    ap.add_argument("algo", choices=ALGOS)
    ap.add_argument("size", type=lambda v: v if v == "imix" else int(v))
    ap.add_argument("sas", type=int)


def tsc_hz():
    with open("/proc/cpuinfo") as f:
        text = f.read()
    m = re.search(r"model name\s*:.*@\s*([\d.]+)GHz", text)
    if m:
        return float(m.group(1)) * 1e9
    return float(re.search(r"cpu MHz\s*:\s*([\d.]+)", text).group(1)) * 1e6


def avg_frame(size):
    if size == "imix":
        return sum(s * n for s, n in pcapgen.IMIX) / sum(n for _, n in pcapgen.IMIX)
    return float(size)


def pcap_path(workdir, direction, algo, size, nsa, mac, nframes=None):
    """Generate each pcap once per run (plaintext ones are shared by all algorithms)."""
    nframes = nframes or FRAMES[nsa]
    name = ("plain-%s-%s-%s.pcap" % (size, nsa, nframes) if direction == "encrypt"
            else "esp-%s-%s-%s-%s.pcap" % (algo, size, nsa, nframes))
    path = os.path.join(workdir, name)
    if not os.path.exists(path):
        if direction == "encrypt":
            frames = pcapgen.plain_frames(mac, size, nsa, nframes)
        else:
            frames = pcapgen.esp_frames(mac, size, nsa, nframes, algo)
            pcapgen.check_with_scapy(frames, algo, nsa, "in", sample=4)
        pcapgen.write_pcap(path, frames)
    return path


def fmt(v, nd=2):
    return "-" if v is None else ("%.*f" % (nd, v))


def pct(v):
    return "-" if v is None else "%.0f %%" % (100 * v)


def derive(res):
    """Best-of and median figures from the raw samples. Other tenants of a shared machine
    only ever take cycles away, so the best 1-s dataplane sample against the best crypto-perf
    run is the least disturbed comparison; medians are kept beside it."""
    for c in res["cases"]:
        runs = sorted(c.get("ceiling_runs_pps", []))
        if runs:
            c["ceiling_pps"] = runs[len(runs) // 2]
            c["ceiling_mpps"] = c["ceiling_pps"] / 1e6
            c["ceiling_best_pps"] = runs[-1]
        for nsa in SA_COUNTS:
            r = c.get("sa%d" % nsa)
            if not r:
                continue
            r["best_pps"] = max(r.get("samples_pps") or [r["pps"]])
            r["gbps_best"] = r["best_pps"] * avg_frame(c["size"]) * 8 / 1e9
            r["cycles_per_pkt_best"] = res["tsc_hz"] / r["best_pps"] if r["best_pps"] else None
            if runs:
                r["of_ceiling"] = r["pps"] / c["ceiling_pps"]
                r["best_of_ceiling"] = r["best_pps"] / c["ceiling_best_pps"]
        sg, one = c.get("secgw"), c.get("sa1")
        if sg and sg.get("pps"):
            sg["best_pps"] = max(sg.get("samples_pps") or [sg["pps"]])
            if runs:
                sg["of_ceiling"] = sg["pps"] / c["ceiling_pps"]
                sg["best_of_ceiling"] = sg["best_pps"] / c["ceiling_best_pps"]
            if one and one.get("pps"):
                c["over_secgw"] = one["pps"] / sg["pps"]
                c["over_secgw_best"] = one["best_pps"] / sg["best_pps"]
        pairs = [p["dpsec_pps"] / p["secgw_pps"] for p in c.get("secgw_pairs", [])
                 if p.get("dpsec_pps") and p.get("secgw_pps")]
        if pairs:
            c["over_secgw_paired"] = statistics.median(pairs)
            c["over_secgw_pairs"] = pairs
        one, many = c.get(WIDE) or c.get("sa1"), c.get("sa10000")
        if one:
            one["best_pps"] = max(one.get("samples_pps") or [one["pps"]])
        if one and many and one["pps"] and one["best_pps"]:
            c["sa10k_over_sa1"] = many["pps"] / one["pps"]
            c["sa10k_over_sa1_best"] = many["best_pps"] / one["best_pps"]


def markdown(res):
    L = []
    frames = res.get("frames", {})  # runs before 2026-12-02 looped 1200 frames for 1 SA
    wide = frames.get("10000", 12000)
    L.append("Dataplane: one worker lcore, busy poll, ESP tunnel, net_pcap (looped) in -> "
             "net_null out. The TX counter of the output port is read every second for "
             "%.0f s after %.0f s warm-up. Crypto-only = dpdk-test-crypto-perf, same "
             "cryptodev, one lcore, burst 32, buffer = ESP payload, 3 runs taken before, "
             "between and after the case's two dataplane runs. **best** = best 1-s sample vs "
             "best crypto-perf run (used for the ratios); *med* = medians. Gbps = plaintext "
             "frames incl. FCS; cyc/pkt = TSC %.2f GHz / best pps. Decrypt: replay window off "
             "because the loop repeats sequence numbers. IMIX = 7:4:1 of 64/576/%d-byte frames. "
             "The 1-SA case loops %d frames (one flow, held in L2); the 10k-SA case %d (one "
             "per SA, %s: every packet of a burst has another SA). net_pcap copies "
             "each frame from the loop, which at %d frames no longer fits the caches, so 10k / "
             "1 SA compares with one SA over %d frames too."
             % (res["window_s"], res["warmup_s"], res["tsc_hz"] / 1e9, pcapgen.IMIX[2][0],
                frames.get("1", 1200), wide,
                res.get("sa_order", "round robin in creation order"), wide, wide))
    L.append("")
    L.append("| dir | algorithm | size | crypto-only Mpps best (med) | 1 SA Mpps best (med) "
             "| Gbps | cyc/pkt | 1 SA % of crypto best (med) | 10k SA Mpps best (med) "
             "| 10k SA % of crypto best | 1 SA, 12000 frames Mpps | 10k / 1 SA best (med) |")
    L.append("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")

    def bm(b, m, nd=3):
        return "-" if b is None else "%.*f (%.*f)" % (nd, b, nd, m)

    for c in res["cases"]:
        one, many, wide = c.get("sa1") or {}, c.get("sa10000") or {}, c.get(WIDE) or {}
        L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            c["direction"], c["algo"], c["size"],
            bm(c.get("ceiling_best_pps") and c["ceiling_best_pps"] / 1e6,
               c.get("ceiling_pps") and c["ceiling_pps"] / 1e6, 2),
            bm(one.get("best_pps") and one["best_pps"] / 1e6, one.get("pps", 0) / 1e6),
            fmt(one.get("gbps_best")), fmt(one.get("cycles_per_pkt_best"), 0),
            "-" if one.get("best_of_ceiling") is None else "%s (%s)" % (
                pct(one["best_of_ceiling"]), pct(one["of_ceiling"])),
            bm(many.get("best_pps") and many["best_pps"] / 1e6, many.get("pps", 0) / 1e6),
            pct(many.get("best_of_ceiling")),
            bm(wide.get("best_pps") and wide["best_pps"] / 1e6, wide.get("pps", 0) / 1e6),
            "-" if c.get("sa10k_over_sa1_best") is None else "%s (%s)" % (
                pct(c["sa10k_over_sa1_best"]), pct(c["sa10k_over_sa1"]))))
    L.append("")
    sg_rows = [c for c in res["cases"] if c.get("secgw")]
    if sg_rows:
        L.append("Against DPDK's ipsec-secgw, same run (`tests/bench/secgw.py`: Debian's "
                 "22.11 example built from its source package, one lcore, legacy mode, the "
                 "same pcaps, vdevs and cryptodev, replay window off, 1 SA; best 1-s sample "
                 "(median)):")
        L.append("")
        L.append("| dir | algorithm | size | ipsec-secgw Mpps | ipsec-secgw % of crypto | "
                 "dpsec 1 SA Mpps | dpsec / ipsec-secgw | paired: median (each pair) |")
        L.append("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for c in sg_rows:
            sg, one = c["secgw"], c.get("sa1") or {}
            pairs = c.get("over_secgw_pairs")
            L.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                c["direction"], c["algo"], c["size"],
                bm(sg.get("best_pps") and sg["best_pps"] / 1e6, sg.get("pps", 0) / 1e6),
                "-" if sg.get("best_of_ceiling") is None else "%s (%s)" % (
                    pct(sg["best_of_ceiling"]), pct(sg["of_ceiling"])),
                bm(one.get("best_pps") and one["best_pps"] / 1e6, one.get("pps", 0) / 1e6),
                "-" if c.get("over_secgw_best") is None else "%.2fx (%.2fx)" % (
                    c["over_secgw_best"], c["over_secgw"]),
                "-" if not pairs else "%.2fx (%s)" % (
                    c["over_secgw_paired"], ", ".join("%.2f" % x for x in pairs))))
        L.append("")
        if any(len(c.get("over_secgw_pairs") or []) > 1 for c in sg_rows):
            L.append("Paired: %d runs of each, back to back in pairs, which one first "
                     "alternating; each pair's ratio of the two runs' rates, and their median."
                     % SECGW_PAIRS)
            L.append("")
    cmp_rows = []
    for c in res["cases"]:
        for nsa in SA_COUNTS:
            d, cpu = c.get("sa%d" % nsa), c.get("sa%d_cpu" % nsa)
            if d and cpu and d.get("pps") and cpu.get("pps"):
                bd = max(d.get("samples_pps") or [d["pps"]])
                bc = max(cpu.get("samples_pps") or [cpu["pps"]])
                cmp_rows.append("| %s | %s | %s | %d | %.3f | %.3f | %.2fx |" % (
                    c["direction"], c["algo"], c["size"], nsa, bd / 1e6, bc / 1e6, bd / bc))
    if cmp_rows:
        L.append("Crypto path, same run (best 1-s samples): intel-ipsec-mb called directly "
                 "(default, `--crypto auto`) vs the ipsec-mb cryptodevs' CPU-crypto API "
                 "(`--crypto cpu`):")
        L.append("")
        L.append("| dir | algorithm | size | SAs | direct Mpps | cryptodev Mpps | direct / "
                 "cryptodev |")
        L.append("| --- | --- | --- | ---: | ---: | ---: | ---: |")
        L += cmp_rows
        L.append("")
    if res.get("verify"):
        L.append("scapy checks (48 frames a check, not looped, output port written to a pcap):")
        L.append("")
        for v in res["verify"]:
            L.append("- %s %s %d SA(s) %d B: %d in, %d out, %d verified by scapy%s" % (
                v["direction"], v["algo"], v["sas"], v.get("size", 512), v["sent"], v["out"],
                v["ok"],
                (" BAD: %s" % v["bad"]) if v["bad"] else ""))
        L.append("")
    if res.get("targets"):
        L.append("| target | measured best (med) | met (on best) |")
        L.append("| --- | --- | --- |")
        for t in res["targets"]:
            L.append("| %s | %s | %s |" % (t["what"], t["measured"], t["met"]))
        L.append("")
    if res.get("e2e"):
        L.append("End to end (hA -> hB through two gateways, iperf3, %s):"
                 % res["e2e"].get("note", ""))
        L.append("")
        L.append("| test | dpsec Gbit/s (runs) | strongSwan libipsec Gbit/s (runs) | ratio |")
        L.append("| --- | ---: | ---: | ---: |")

        def runs(leg, k):
            r = res["e2e"].get(leg, {}).get(k + "_runs")
            return " (%s)" % ", ".join(fmt(x, 3) for x in r) if r else ""
        for k in ("tcp", "udp"):
            d = res["e2e"].get("dpsec", {}).get(k)
            s = res["e2e"].get("strongswan", {}).get(k)
            L.append("| %s | %s%s | %s%s | %s |" % (k.upper(), fmt(d, 3), runs("dpsec", k),
                                                    fmt(s, 3), runs("strongswan", k),
                                                    "-" if not (d and s) else "%.1fx" % (d / s)))
        for k in ("dpsec_error", "strongswan_error"):
            if res["e2e"].get(k):
                L.append("")
                L.append("%s: %s" % (k, res["e2e"][k]))
        L.append("")
    if res.get("memlat"):
        lat = ", ".join("%s %.0f" % ("%d MiB" % (k // 1024) if k >= 1024 else "%d KiB" % k, c)
                        for k, c in res["memlat"])
        L.append("Memory, same run (`build/bench/memlat`: dependent loads, one per 64-B line "
                 "in a random order, transparent huge pages, on the worker's CPU), TSC cycles "
                 "per load: %s. With 10k SAs every packet of a burst reads another SA's ~8 "
                 "lines (GCM: its hot line, GCM template, counters, ~5 key lines; CBC+HMAC "
                 "also rte_ipsec's session and SA) and 2 of the SPD (flow entry, its "
                 "policy's counters): ~10 lines, ~7 MB across the 10k, past "
                 "the sizes that answer from cache here, so each packet waits on memory for "
                 "each of them, overlapped only as far as the core's misses in flight allow." % lat)
        L.append("")
    if res.get("errors"):
        L.append("Errors: %s" % res["errors"])
        L.append("")
    return "\n".join(L)


def evaluate_targets(res):
    out = []
    by = {(c["direction"], c["algo"], str(c["size"])): c for c in res["cases"]}
    for (d, size), want in TARGETS.items():
        c = by.get((d, "aes-gcm-128", str(size)))
        v = c and c.get("sa1") and c["sa1"].get("best_of_ceiling")
        m = c and c.get("sa1") and c["sa1"].get("of_ceiling")
        out.append({"what": "%s %s B AES-128-GCM >= %.0f %% of crypto-only" % (d, size, 100 * want),
                    "measured": "%s (%s)" % (pct(v), pct(m)),
                    "met": "-" if v is None else ("met" if v >= want else "not met")})
    for c in res["cases"]:
        want = TARGETS_SECGW.get(c["size"])
        if want is None or c["algo"] != "aes-gcm-128" or c.get("over_secgw_best") is None:
            continue
        paired = c.get("over_secgw_paired")
        out.append({"what": "%s %s B AES-128-GCM >= %.1fx ipsec-secgw (same run)"
                            % (c["direction"], c["size"], want),
                    "measured": "%.2fx (%.2fx)%s" % (
                        c["over_secgw_best"], c["over_secgw"],
                        "" if paired is None else "; paired median %.2fx" % paired),
                    "met": "met" if c["over_secgw_best"] >= want else "not met"})
    worst = None
    for c in res["cases"]:
        r = c.get("sa10k_over_sa1_best")
        if r is not None and (worst is None or r < worst[0]):
            worst = (r, c)
    if worst:
        c = worst[1]
        out.append({"what": "10k SAs >= 90 % of 1 SA (worst case)",
                    "measured": "%s (%s) at %s %s %s" % (pct(worst[0]), pct(c["sa10k_over_sa1"]),
                                                        c["direction"], c["algo"], c["size"]),
                    "met": "met" if worst[0] >= TARGET_10K else "not met"})
    e = res.get("e2e") or {}
    d, s = e.get("dpsec", {}).get("tcp"), e.get("strongswan", {}).get("tcp")
    if d and s:
        out.append({"what": "e2e TCP >= 4x stock strongSwan", "measured": "%.1fx" % (d / s),
                    "met": "met" if d / s >= TARGET_E2E_TCP else "not met"})
    return out


MEMLAT_KIB = (256, 1024, 2048, 4096, 8192, 16384, 65536)
WORKER_CPU = 1  # the dataplane's worker lcore (dataplane_bench: -l 0,1)


def memlat(outdir):
    """[[KiB, cycles per dependent load], ...] on the worker's CPU (tests/bench/memlat.c)."""
    p = subprocess.run([os.path.join(outdir, "memlat"), "-c", str(WORKER_CPU)]
                       + [str(k) for k in MEMLAT_KIB], capture_output=True, text=True,
                       timeout=300)
    if p.returncode != 0:
        raise RuntimeError("memlat: %s" % p.stderr.strip())
    return [[int(k), float(c)] for k, c in (ln.split() for ln in p.stdout.splitlines())]


def save(res, outdir):
    derive(res)
    res["targets"] = evaluate_targets(res)
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    md = markdown(res)
    with open(os.path.join(outdir, "results.md"), "w") as f:
        f.write("# dpsec benchmark %s\n\n%s\n" % (res["date"], md))
    return md


def more_pairs(case, ns, tag, d, algo, conf, pcap, workdir, a):
    """SECGW_PAIRS - 1 more dpsec / ipsec-secgw pairs of one case, ipsec-secgw first in
    every other one."""
    for k in range(SECGW_PAIRS - 1):
        got = {}
        for who in (("secgw", "dpsec") if k % 2 == 0 else ("dpsec", "secgw")):
            if who == "dpsec":
                got["dpsec_pps"] = dataplane_bench.measure(ns, tag, d, conf, pcap, workdir,
                                                           a.warmup, a.window)["pps"]
            else:
                got["secgw_pps"] = secgw.measure(tag, d, algo, pcap, workdir, a.warmup,
                                                 a.window)["pps"]
        case["secgw_pairs"].append(got)
        print("bench: %-7s %-24s %-5s     pair %d: dpsec %.3f, ipsec-secgw %.3f Mpps"
              % (d, algo, case["size"], k + 2, got["dpsec_pps"] / 1e6, got["secgw_pps"] / 1e6),
              flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="build/bench")
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--window", type=float, default=5.0)
    ap.add_argument("--algos", default=",".join(ALGOS))
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)))
    ap.add_argument("--sas", default=",".join(map(str, SA_COUNTS)))
    ap.add_argument("--directions", default=",".join(DIRECTIONS))
    ap.add_argument("--no-e2e", action="store_true")
    ap.add_argument("--compare-cpu", action="store_true",
                    help="also run each case with --crypto cpu (the ipsec-mb cryptodevs' "
                         "CPU-crypto API instead of ipsec-mb called directly)")
    ap.add_argument("--no-verify", action="store_true")
    ap.add_argument("--no-secgw", action="store_true",
                    help="skip the ipsec-secgw reference (tests/bench/secgw.py)")
    ap.add_argument("--report-only", action="store_true",
                    help="re-render results.md from OUT/results.json")
    a = ap.parse_args()
    if a.report_only:
        path = os.path.join(os.path.abspath(a.out), "results.json")
        with open(path) as f:
            res = json.load(f)
        print(save(res, os.path.abspath(a.out)))
        return 0
    algos = a.algos.split(",")
    sizes = [s if s == "imix" else int(s) for s in a.sizes.split(",")]
    sa_counts = [int(x) for x in a.sas.split(",")]
    directions = a.directions.split(",")

    outdir = os.path.abspath(a.out)
    workdir = os.path.join(outdir, "work")
    os.makedirs(workdir, exist_ok=True)
    tag = secrets.token_hex(3)
    res = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
           "command": " ".join(sys.argv), "tsc_hz": tsc_hz(), "warmup_s": a.warmup,
           "window_s": a.window, "decrypt_replay_window": DECRYPT_REPLAY_WINDOW,
           "imix": pcapgen.IMIX, "frames": {str(k): v for k, v in FRAMES.items()},
           "sa_order": "a fixed random order (seed %d)" % pcapgen.SA_ORDER_SEED,
           "cases": [], "verify": [], "errors": []}
    try:
        res["memlat"] = memlat(outdir)
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
        res["errors"].append(str(e))
    ns = dataplane_bench.Netns("dpb-%s" % tag)
    t_begin = time.time()
    try:
        empty = os.path.join(workdir, "empty.pcap")
        pcapgen.write_pcap(empty, [])
        probe = os.path.join(workdir, "probe.pcap")
        pcapgen.write_pcap(probe, pcapgen.plain_frames("02:00:00:00:00:ff", 64, 1, 1))
        macs = {d: dataplane_bench.discover_mac(ns, tag, d, probe, workdir) for d in directions}
        print("bench: input port MACs %s" % macs, flush=True)

        if not a.no_verify:
            for d in directions:
                checks = [(algo, 1) for algo in algos] + [(algos[0], max(sa_counts))]
                for (algo, nsa), size in ((c, z) for c in checks for z in verify.SIZES):
                    v = verify.check(ns, tag, d, algo, nsa, workdir, empty, size)
                    res["verify"].append(v)
                    print("bench: verify %s" % v, flush=True)

        for d in directions:
            for algo in algos:
                for size in sizes:
                    case = {"direction": d, "algo": algo, "size": size, "ceiling_runs_pps": []}

                    def ceiling():
                        try:
                            case["ceiling_runs_pps"].append(
                                cryptoperf.ceiling_pps_timed(tag, d, algo, size, 1.5))
                        except Exception as e:
                            res["errors"].append("crypto-perf %s %s %s: %s" % (d, algo, size, e))

                    # crypto-perf before, between and after the dataplane runs; the median
                    # is the ceiling, so both sides see the same machine load.
                    ceiling()
                    for nsa in sa_counts:
                        pcap = pcap_path(workdir, d, algo, size, nsa, macs[d])
                        conf = pcapgen.config(d, algo, nsa, DECRYPT_REPLAY_WINDOW)
                        try:
                            r = dataplane_bench.measure(ns, tag, d, conf, pcap, workdir,
                                                        a.warmup, a.window)
                        except Exception as e:
                            res["errors"].append("%s %s %s %d SAs: %s" % (d, algo, size, nsa, e))
                            print("bench: ERROR %s" % res["errors"][-1], flush=True)
                            continue
                        runs = sorted(case["ceiling_runs_pps"])
                        if runs:
                            case["ceiling_pps"] = runs[len(runs) // 2]
                            case["ceiling_mpps"] = case["ceiling_pps"] / 1e6
                        r["mpps"] = r["pps"] / 1e6
                        r["gbps"] = r["pps"] * avg_frame(size) * 8 / 1e9
                        r["cycles_per_pkt"] = res["tsc_hz"] / r["pps"] if r["pps"] else None
                        if case.get("ceiling_pps"):
                            r["of_ceiling"] = r["pps"] / case["ceiling_pps"]
                        case["sa%d" % nsa] = r
                        if nsa == 1 and algo in SECGW_ALGOS and not a.no_secgw:
                            try:
                                case["secgw"] = secgw.measure(tag, d, algo, pcap, workdir,
                                                              a.warmup, a.window)
                                print("bench: %-7s %-24s %-5s     1 SA ipsec-secgw: %.3f Mpps"
                                      % (d, algo, size, case["secgw"]["pps"] / 1e6),
                                      flush=True)
                                case["secgw_pairs"] = [{"dpsec_pps": r["pps"],
                                                        "secgw_pps": case["secgw"]["pps"]}]
                                if size in TARGETS_SECGW:
                                    more_pairs(case, ns, tag, d, algo, conf, pcap, workdir, a)
                            except Exception as e:
                                res["errors"].append("ipsec-secgw %s %s %s: %s"
                                                     % (d, algo, size, e))
                        if a.compare_cpu:
                            try:
                                rc = dataplane_bench.measure(ns, tag, d, conf, pcap, workdir,
                                                             a.warmup, a.window,
                                                             ["--crypto", "cpu"])
                                case["sa%d_cpu" % nsa] = rc
                                print("bench: %-7s %-24s %-5s %5d SA via cryptodev cpu: "
                                      "%.3f Mpps" % (d, algo, size, nsa, rc["pps"] / 1e6),
                                      flush=True)
                            except Exception as e:
                                res["errors"].append("%s %s %s %d SAs --crypto cpu: %s"
                                                     % (d, algo, size, nsa, e))
                        ceiling()
                        print("bench: %-7s %-24s %-5s %5d SA: %.3f Mpps (crypto-only %s Mpps)"
                              " drops %s" % (d, algo, size, nsa, r["mpps"],
                                             fmt(case.get("ceiling_mpps")),
                                             {p: {k: v for k, v in c.items() if k.startswith("drop")}
                                              for p, c in r["counters"].items()}), flush=True)
                    if 1 in sa_counts and max(sa_counts) > 1:
                        # the 10k/1 baseline: one SA over as many frames as the 10k pcap
                        nwide = FRAMES[max(sa_counts)]
                        pcap = pcap_path(workdir, d, algo, size, 1, macs[d], nwide)
                        conf = pcapgen.config(d, algo, 1, DECRYPT_REPLAY_WINDOW)
                        try:
                            case[WIDE] = dataplane_bench.measure(ns, tag, d, conf, pcap,
                                                                 workdir, a.warmup, a.window)
                            case[WIDE]["frames"] = nwide
                            print("bench: %-7s %-24s %-5s     1 SA over %d frames: %.3f Mpps"
                                  % (d, algo, size, nwide, case[WIDE]["pps"] / 1e6), flush=True)
                        except Exception as e:
                            res["errors"].append("%s %s %s 1 SA, %d frames: %s"
                                                 % (d, algo, size, nwide, e))
                    runs = sorted(case["ceiling_runs_pps"])
                    if runs:
                        case["ceiling_pps"] = runs[len(runs) // 2]
                        case["ceiling_mpps"] = case["ceiling_pps"] / 1e6
                        for nsa in sa_counts:
                            if case.get("sa%d" % nsa):
                                case["sa%d" % nsa]["of_ceiling"] = (case["sa%d" % nsa]["pps"]
                                                                    / case["ceiling_pps"])
                    base = case.get(WIDE) or case.get("sa1")
                    if base and case.get("sa10000") and base["pps"]:
                        case["sa10k_over_sa1"] = case["sa10000"]["pps"] / base["pps"]
                    res["cases"].append(case)
                    save(res, outdir)
    finally:
        ns.delete()
        dataplane_bench.remove_dpdk_files("dpb-%s" % tag)
        cryptoperf.cleanup(tag)
    res["matrix_s"] = round(time.time() - t_begin)

    if not a.no_e2e:
        try:
            import e2e
            res["e2e"] = e2e.run_all()
        except Exception:
            res["e2e"] = {"dpsec_error": traceback.format_exc()[-1500:]}
    md = save(res, outdir)
    print(md)
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
