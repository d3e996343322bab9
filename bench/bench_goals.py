#!/usr/bin/python3
"""The speed goals of issue 15 in one table, from the outputs of one scripts/bench.sh run:
unet.json (bench_report.py: tweedie vs PyTorch eager), operators.json (bench_operators --table
--json) and scale.json (bench_scale --json). A file that is missing gives "not run" rows.

    bench/bench_goals.py --dir results/bench --md results/bench/goals.md"""
import argparse
import json
import os


def load(d, name):
    try:
        with open(os.path.join(d, name)) as f:
            return json.load(f)
    except OSError:
        return None


def fmt(v, digits=3):
    return "not run" if v is None else f"{v:.{digits}g}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--md", required=True)
    a = p.parse_args()
    unet, ops, scale = load(a.dir, "unet.json"), load(a.dir, "operators.json"), load(a.dir, "scale.json")
    rows = []  # (goal, measured, target, met)

    def add(goal, value, target, ok, digits=3):
        rows.append((goal, fmt(value, digits), target, "not run" if value is None else ("yes" if ok(value) else "no")))

    nfe = (unet or {}).get("nfe", {})
    for b in ("1", "16"):
        r = nfe.get(b, {}).get("ratio")
        add(f"U-Net per NFE, batch {b}: PyTorch eager time / tweedie time", r, "≥ 1.5", lambda v: v >= 1.5)
    add("U-Net training images/s: tweedie / PyTorch eager", (unet or {}).get("train", {}).get("ratio"), "≥ 1.3",
        lambda v: v >= 1.3)
    # The same ratios against eager run with tweedie's malloc settings (keep_freed_memory): the
    # part of the gain that is not the allocator. Reported, not a goal.
    for b in ("1", "16"):
        r = nfe.get(b, {}).get("ratio_to_eager_malloc")
        if r is not None:
            rows.append((f"U-Net per NFE, batch {b}: eager with tweedie's malloc settings / tweedie", fmt(r),
                         "report", "-"))
    r = (unet or {}).get("train", {}).get("ratio_to_eager_malloc")
    if r is not None:
        rows.append(("U-Net training images/s: tweedie / eager with tweedie's malloc settings", fmt(r), "report", "-"))
    g16, peak = nfe.get("16", {}).get("tweedie_gflops"), (unet or {}).get("conv_peak_gflops")
    add("U-Net GFLOP/s at batch 16, % of the measured 3x3 convolution throughput",
        g16 and peak and 100 * g16 / peak, "≥ 50 %", lambda v: v >= 50)
    big = next((r for r in ops or [] if r["n"] >= 196608), None)
    add("SRHT apply + adjoint at 3x256x256 / a copy of the image", big and big["srht_over_copy"], "≤ 4",
        lambda v: v <= 4)
    add("SRDCT apply + adjoint at 3x256x256 / a copy of the image", big and big.get("srdct_over_copy"), "≤ 4",
        lambda v: v <= 4)
    add("matrix-free Gaussian at 3x256x256, ns of CPU per entry per core",
        big and big["matrix_free_ns_per_entry_per_core"], "≤ 3", lambda v: v <= 3)
    for r in (scale or {}).get("rows", []):
        how = "measured" if r["ran_defaults"] else "projected from a reduced run"
        rows.append((f"{r['solver']} on {r['operator']}, 3x{scale['size']}x{scale['size']}, M/N = "
                     f"{scale['m'] / scale['n']:.4g}: s / image at its defaults ({how}; network "
                     f"{r['network_seconds'] / max(r['nfe'], 1):.3g} s per NFE)",
                     fmt(r["seconds_at_defaults"]), "report", f"peak {r['peak_mb']:.0f} MB"))
    lines = ["## Speed goals (issue 15), one run of scripts/bench.sh\n",
             "| goal | measured | target | met |", "|---|---:|---|---|"]
    lines += [f"| {g} | {m} | {t} | {ok} |" for g, m, t, ok in rows]
    with open(a.md, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
