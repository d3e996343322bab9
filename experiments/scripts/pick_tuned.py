"""Read a tuning run's finished cells and pick, per problem and method label, the setting with the
best mean PSNR; print the table and, with --set-for CONFIG, write those settings into CONFIG's
methods as "set_for" (docs/experiments.md), so the evaluation run uses each task's validation
choice under one label. Reads OUT/cells/*/*/*/cell.json, so it works on a run still in progress
(problems whose grid is incomplete are reported and skipped).

    /usr/bin/python3 experiments/scripts/pick_tuned.py results/seed002/tune-baselines \
        [--set-for experiments/seed002-full.json --also dps-100=dps --also red-diff-100=red-diff]
"""
import argparse
import glob
import json
import math
import os
import re
from collections import defaultdict

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("run", help="the tuning run's output directory (holds cells/)")
ap.add_argument("--set-for", help="an experiment config whose methods (by label) receive set_for")
ap.add_argument("--expect", type=int, default=0, help="grid points per (problem, label); 0: take what is there")
ap.add_argument("--also", action="append", default=[], metavar="LABEL=SOURCE",
                help="give LABEL (a method of --set-for's config) the picks of the tuned label SOURCE "
                     "(e.g. dps-100=dps: the 100-NFE arm takes the 1000-NFE arm's tuned setting)")
args = ap.parse_args()

grid = defaultdict(list)  # (problem, label) -> [(mean, se, swept settings, n)]
for path in sorted(glob.glob(os.path.join(args.run, "cells", "*", "*", "*", "cell.json"))):
    cell = json.load(open(path))
    d = cell["description"]
    psnr = cell["metrics"]["psnr"]
    n = len(psnr)
    mean = sum(psnr) / n
    se = math.sqrt(sum((p - mean) ** 2 for p in psnr) / (n - 1) / n) if n > 1 else float("nan")
    key = os.path.basename(os.path.dirname(path))  # "k=v_k=v" or "default"
    swept = {}
    if key != "default":  # "mo_sigma_min=0_mo_steps=5": keys may hold "_", values (numbers, words) do not
        swept = dict(re.findall(r"([A-Za-z][A-Za-z0-9_]*?)=([^_]*)(?:_|$)", key))
    grid[(d["problem"]["name"], d["label"])].append((mean, se, swept, n))

def number_or_word(v):
    """'20' -> 20 (integer options refuse 20.0), '0.05' -> 0.05, 'zeros' -> 'zeros'."""
    if re.fullmatch(r"-?\d+", v):
        return int(v)
    try:
        return float(v)
    except ValueError:
        return v


picks = defaultdict(dict)
print("| problem | label | points | best setting | PSNR (dB) | runner-up |")
print("|---|---|---|---|---|---|")
for (problem, label), points in sorted(grid.items()):
    points.sort(key=lambda p: -p[0])
    complete = not args.expect or len(points) == args.expect
    best = points[0]
    second = f"{points[1][0]:.2f} ({', '.join(f'{k}={v}' for k, v in points[1][2].items())})" if len(points) > 1 else ""
    note = "" if complete else f" (incomplete: {len(points)} of {args.expect})"
    print(f"| {problem} | {label} | {len(points)}{note} | {', '.join(f'{k}={v}' for k, v in best[2].items())} | "
          f"{best[0]:.2f} ± {best[1]:.2f} (n = {best[3]}) | {second} |")
    if complete:
        picks[label][problem] = {k: number_or_word(v) for k, v in best[2].items()}

for pair in args.also:
    label, _, source = pair.partition("=")
    if source in picks:
        picks[label] = dict(picks[source])

if args.set_for:
    cfg = json.load(open(args.set_for))
    problems = {p["name"] for p in cfg["problems"]}  # a config may run a subset of the tuned tasks
    for m in cfg["methods"]:
        label = m.get("label", m["method"])
        if label in picks:
            m["set_for"] = {p: v for p, v in picks[label].items() if p in problems}
    tmp = args.set_for + ".tmp"
    with open(tmp, "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    os.replace(tmp, args.set_for)
    print(f"\nwrote set_for for {sorted(picks)} into {args.set_for}")
