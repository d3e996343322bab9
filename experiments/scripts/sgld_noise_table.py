"""Issue 27 item 4(b): the SGLD-noise table of docs/results.md from the committed cells of
experiments/seed002-sgld-noise.json (PSNR mean ± SE over the 50 images; "–" where a cell is missing).

    /usr/bin/python3 experiments/scripts/sgld_noise_table.py [results/seed002/sgld-noise]
"""
import json
import math
import os
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "results/seed002/sgld-noise"
TASKS = [("sr4", "SR ×4"), ("random70", "random inpainting"), ("motion", "motion deblur"), ("phase", "phase retrieval")]
METHODS = [("dps-mo", "DPS-MO"), ("red-diff-mo", "RED-diff-MO")]
GAMMAS = ["0", "0.1", "0.3", "1"]


def psnrs(task, method, lr, gamma):
    path = os.path.join(root, "cells", task, method, f"mo_lr={lr}_mo_noise={gamma}", "cell.json")
    return json.load(open(path))["metrics"]["psnr"] if os.path.exists(path) else None


def mean_se(p):
    mean = sum(p) / len(p)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in p) / (len(p) - 1) / len(p))


def cell(task, method, lr, gamma):
    p = psnrs(task, method, lr, gamma)
    return mean_se(p) if p else None


print("| task, method, η·L | γ = 0 | γ = 0.1 | γ = 0.3 | γ = 1 | γ = 0.1 − γ = 0, paired |")
print("|---|---|---|---|---|---|")
for task, tname in TASKS:
    for method, mname in METHODS:
        for lr in ("0.5", "0.1"):
            vals = [cell(task, method, lr, g) for g in GAMMAS]
            best = max((v[0] for v in vals if v), default=None)
            cells = []
            for v in vals:
                if v is None:
                    cells.append("–")
                else:
                    text = f"{v[0]:.2f} ± {v[1]:.2f}"
                    cells.append(f"**{text}**" if v[0] == best else text)
            a, b = psnrs(task, method, lr, "0"), psnrs(task, method, lr, "0.1")
            diff = mean_se([y - x for x, y in zip(a, b)]) if a and b else None
            cells.append(f"{diff[0]:+.2f} ± {diff[1]:.2f}" if diff else "–")
            print(f"| {tname}, {mname}, {lr} | " + " | ".join(cells) + " |")
