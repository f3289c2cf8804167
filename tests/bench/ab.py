"""Is a change faster? Interleaved A/B of two dataplane builds on benchmark cases.

    /usr/bin/python3 tests/bench/ab.py --base 75e418a [--new build/dpsec-dataplane]
        [--pairs 6] [--warmup 2] [--window 4] decrypt:aes-gcm-128:64:1 encrypt:aes-gcm-128:64:10000

(`make ab BASE=<rev> [CASES="..."] [PAIRS=N]` runs it as root after `make all`.)

--base and --new each name a dataplane binary or a git revision; a revision is built once
into build/ab/<sha>/ from a temporary worktree. Each case runs in pairs, one run of each
build back to back, the order alternating pair by pair, with the same pcap, config and
vdevs as `make bench` (dataplane_bench.measure). This host's speed drifts by 10-30 %
within minutes (other tenants), which moves both runs of a pair together; so the
verdict is the median of the per-pair ratios new/base and how many pairs new won, not
the ratio of two averages. Writes build/bench/ab.json.
"""

import argparse
import filecmp
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench  # noqa: E402
import dataplane_bench as db  # noqa: E402
import pcapgen  # noqa: E402

AB_DIR = os.path.join(db.REPO, "build", "ab")


def git(*args):
    return subprocess.run(["git", "-C", db.REPO] + list(args), check=True,
                          capture_output=True, text=True).stdout.strip()


def binary(spec):
    """A dataplane binary for @spec: an existing file, or a revision built once."""
    if os.path.isfile(spec):
        return os.path.abspath(spec)
    try:
        sha = git("rev-parse", "--verify", spec + "^{commit}")
    except subprocess.CalledProcessError:
        sys.exit("ab: %r is neither a file nor a git revision" % spec)
    out = os.path.join(AB_DIR, sha[:12], "dpsec-dataplane")
    if os.path.isfile(out):
        return out
    src = tempfile.mkdtemp(prefix="dpsec-ab-src-")
    try:
        git("worktree", "add", "--detach", src, sha)
        print("ab: building %s in %s" % (sha[:12], src), flush=True)
        subprocess.run(["make", "-C", src, "-j2", "build/dpsec-dataplane"], check=True,
                       stdout=subprocess.DEVNULL)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        shutil.copy2(os.path.join(src, "build", "dpsec-dataplane"), out)
    finally:
        git("worktree", "remove", "--force", src)
    return out


def parse_case(text):
    try:
        direction, algo, size, sas = text.split(":")
        size = size if size == "imix" else int(size)
        sas = int(sas)
    except ValueError:
        sys.exit("ab: case %r is not direction:algo:size:sas" % text)
    if direction not in bench.DIRECTIONS or algo not in bench.ALGOS or \
            size not in bench.SIZES or sas not in bench.SA_COUNTS:
        sys.exit("ab: case %r: direction in %s, algo in %s, size in %s, sas in %s" % (
            text, bench.DIRECTIONS, bench.ALGOS, bench.SIZES, bench.SA_COUNTS))
    return direction, algo, size, sas


def main():
    ap = argparse.ArgumentParser(description="interleaved A/B of two dataplane builds")
    ap.add_argument("--base", required=True, help="binary or git revision")
    ap.add_argument("--new", default=os.path.join(db.REPO, "build", "dpsec-dataplane"),
                    help="binary or git revision (default: this tree's build)")
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--window", type=float, default=4.0)
    ap.add_argument("--out", default=os.path.join(db.REPO, "build", "bench", "ab.json"))
    ap.add_argument("cases", nargs="+", help="direction:algo:size:sas")
    a = ap.parse_args()
    if a.pairs < 1:
        sys.exit("ab: --pairs must be at least 1")
    cases = [parse_case(c) for c in a.cases]
    bins = {"base": binary(a.base), "new": binary(a.new)}
    if filecmp.cmp(bins["base"], bins["new"], shallow=False):
        print("ab: note: base and new are the same binary", flush=True)

    work = tempfile.mkdtemp(prefix="dpsec-ab-")
    db.run(["ip", "netns", "del", "dpb-ab"], check=False)  # left by an interrupted run
    ns = db.Netns("dpb-ab")
    report = {"base": a.base, "new": a.new, "binaries": bins, "pairs": a.pairs,
              "warmup_s": a.warmup, "window_s": a.window, "cases": []}
    failed = False
    try:
        empty = os.path.join(work, "empty.pcap")
        pcapgen.write_pcap(empty, [])
        for direction, algo, size, sas in cases:
            mac = db.discover_mac(ns, "abm", direction, empty, work)
            pcap = bench.pcap_path(work, direction, algo, size, sas, mac)
            conf = pcapgen.config(direction, algo, sas, bench.DECRYPT_REPLAY_WINDOW)
            runs = []
            for p in range(a.pairs):
                res = {}
                for side in (("base", "new") if p % 2 == 0 else ("new", "base")):
                    db.DATAPLANE = bins[side]
                    r = db.measure(ns, "ab", direction, conf, pcap, work, a.warmup, a.window)
                    if r["exit_code"] not in (0, None) or r["pps"] <= 0:
                        sys.exit("ab: %s run of %s %s %s %d failed (exit %s):\n%s" % (
                            side, direction, algo, size, sas, r["exit_code"], r["log_tail"]))
                    res[side] = r["pps"]
                runs.append({"base_pps": res["base"], "new_pps": res["new"],
                             "ratio": res["new"] / res["base"]})
                print("%s %s %s %d pair %d: base %.3f new %.3f Mpps, new/base %.3f" % (
                    direction, algo, size, sas, p + 1, res["base"] / 1e6, res["new"] / 1e6,
                    runs[-1]["ratio"]), flush=True)
            ratios = [r["ratio"] for r in runs]
            case = {"direction": direction, "algo": algo, "size": size, "sas": sas,
                    "median_ratio": statistics.median(ratios),
                    "new_won": sum(r > 1 for r in ratios), "runs": runs}
            report["cases"].append(case)
            print("%s %s %s %d: median new/base %.3f, new faster in %d of %d pairs" % (
                direction, algo, size, sas, case["median_ratio"], case["new_won"], len(runs)),
                flush=True)
    except KeyboardInterrupt:
        failed = True
    finally:
        ns.delete()
        shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(report, f, indent=1)
    print("ab: wrote %s" % a.out)
    return 130 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
