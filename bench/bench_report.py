#!/usr/bin/python3
"""Combines the raw results of scripts/bench.sh (Google Benchmark JSON from bench_unet, and
adm_unet_reference.py --bench JSON) into a markdown table and a summary JSON.

Every figure is the minimum time (maximum rate) over all repetitions of all rounds."""
import argparse
import datetime
import glob
import json
import os
import platform

UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_cpp(raw):
    """Best (minimum) seconds per iteration for each benchmark run name, plus the context."""
    best, cpu, context, reps = {}, {}, {}, {}
    for path in sorted(glob.glob(os.path.join(raw, "cpp_*.json"))):
        with open(path) as f:
            j = json.load(f)
        context = j.get("context", context)
        for b in j["benchmarks"]:
            if b.get("run_type", "iteration") != "iteration" or b.get("error_occurred"):
                continue
            name = b["run_name"] if "run_name" in b else b["name"]
            sec = b["real_time"] * UNIT[b.get("time_unit", "ns")]
            reps[name] = reps.get(name, 0) + 1
            best[name] = min(best.get(name, float("inf")), sec)
            c = b["cpu_time"] * UNIT[b.get("time_unit", "ns")]
            cpu[name] = min(cpu.get(name, float("inf")), c)
    if not best:
        raise SystemExit(f"bench_report: no C++ results in {raw}")
    return best, cpu, context, reps


def load_eager(raw, prefix):
    runs = []
    for path in sorted(glob.glob(os.path.join(raw, f"{prefix}_*.json"))):
        with open(path) as f:
            runs.append(json.load(f))
    if not runs:
        return None
    inf = float("inf")
    out = {"meta": runs[0], "nfe": {}, "nfe_cpu": {}, "train": None, "train_cpu": inf, "conv": {},
           "rounds": len(runs)}
    for r in runs:
        for b, v in r["nfe"].items():
            out["nfe"][int(b)] = min(out["nfe"].get(int(b), inf), v["seconds"])
            out["nfe_cpu"][int(b)] = min(out["nfe_cpu"].get(int(b), inf), v["cpu_seconds"])
        if r.get("train"):
            s = r["train"]["seconds_per_step"]
            if out["train"] is None or s < out["train"][1]:
                out["train"] = (r["train"]["batch"], s)
            out["train_cpu"] = min(out["train_cpu"], r["train"]["cpu_seconds_per_step"])
        for c in r["conv"]:
            out["conv"][c["name"]] = max(out["conv"].get(c["name"], 0.0), c["gflops"])
    return out


def find(best, prefix):
    """{arg: seconds} for C++ runs named prefix/<argname>:<value>/real_time."""
    out = {}
    for name, sec in best.items():
        if name.startswith(prefix + "/"):
            parts = dict(p.split(":", 1) for p in name.split("/")[1:] if ":" in p)
            out[tuple(sorted(parts.items()))] = sec
    return out


def fmt(v, digits=3):
    if v is None:
        return "n/a"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.{digits - 1}f}" if v >= 1 else f"{v:.{digits}f}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--raw", required=True)
    p.add_argument("--md", required=True)
    p.add_argument("--json", required=True)
    a = p.parse_args()

    best, cpu, ctx, reps = load_cpp(a.raw)
    eager = load_eager(a.raw, "eager")
    eager_cl = load_eager(a.raw, "eagercl")
    # PyTorch eager under the glibc malloc settings tweedie applies to itself
    # (tweedie::keep_freed_memory): how much of the difference is the allocator.
    eager_m = load_eager(a.raw, "eagermalloc")
    if eager is None:
        raise SystemExit(f"bench_report: no PyTorch eager results in {a.raw}")
    fpi = float(ctx.get("flops_per_image", 0)) or eager["meta"]["flops_per_image"]
    fpi_eager = eager["meta"]["flops_per_image"]
    threads = ctx.get("torch_threads", "?")

    # NFE and training runs are named .../batch:B/layout:L (0 NCHW, 1 channels-last, 2 auto);
    # the network's default layout is the headline figure, the others extra columns.
    layout_default = ctx.get("layout_default", "2")
    train_layout_default = ctx.get("train_layout_default", layout_default)
    layout_names = {"0": "NCHW", "1": "channels-last", "2": "auto"}

    def layout_runs(table, layout, name="BM_UNetNFE"):
        out = {}
        for k, s in find(table, name).items():
            d = dict(k)
            if d.get("layout") == layout:
                out[int(d["batch"])] = s
        return out

    def layouts_of(table, name):
        return sorted({dict(k).get("layout") for k in find(table, name)} - {None})

    nfe_cpp = layout_runs(best, layout_default)
    alt_layouts = [L for L in layouts_of(best, "BM_UNetNFE") if L != layout_default]
    nfe_cpp_alt = {L: layout_runs(best, L) for L in alt_layouts}
    train_cpp = layout_runs(best, train_layout_default, "BM_UNetTrainStep")
    train_cpp_alt = {L: layout_runs(best, L, "BM_UNetTrainStep") for L in alt_layouts}
    nfe_cpp_cpu = layout_runs(cpu, layout_default)
    train_cpp_cpu = layout_runs(cpu, train_layout_default, "BM_UNetTrainStep")
    conv_cpp = {}
    for k, s in find(best, "BM_Conv3x3").items():
        d = dict(k)
        c, r, b, cl = (int(d[x]) for x in ("ch", "res", "batch", "cl"))
        name = f"conv3x3_c{c}_r{r}_b{b}_{'cl' if cl else 'nchw'}"
        conv_cpp[name] = 2.0 * b * c * c * 9 * r * r / s / 1e9
    conv_peak = max(list(conv_cpp.values()) + list(eager["conv"].values()))

    mismatch = False
    rows, summary = [], {"threads": threads, "flops_per_image": fpi, "conv_peak_gflops": conv_peak,
                         "nfe": {}, "train": {}, "conv": {}}
    lines = []
    lines.append("## ADM U-Net speed: tweedie (C++ LibTorch) vs PyTorch eager\n")
    lines.append(f"- Model: {ctx.get('model', '?')}; {int(float(ctx.get('num_parameters', 0))):,} "
                 f"parameters; {fpi / 1e6:.1f} MFLOP per image (tweedie's count; the Python "
                 f"reference counts {fpi_eager / 1e6:.1f})")
    lines.append(f"- Threads: {threads} (both sides), OMP_WAIT_POLICY="
                 f"{os.environ.get('OMP_WAIT_POLICY') or '(unset)'}; torch {eager['meta']['torch']}; {cpu_model()}; "
                 f"{datetime.datetime.now().isoformat(timespec='minutes')}")
    nreps = max(reps.values())
    lines.append(f"- Each figure is the **minimum** time over {nreps} repetitions "
                 f"({eager['rounds']} alternating rounds of C++ and Python); the machine may be "
                 "shared, so the minimum is the least disturbed run.")
    chk = eager["meta"].get("check")
    if chk:
        lines.append(f"- Same function: on a seeded batch of {chk['shape'][0]} inputs the two "
                     f"outputs differ by at most {chk['max_abs_diff']:.2g} (outputs up to "
                     f"{chk['max_abs_output']:.2g}).")
        summary["check"] = chk
        if chk["max_abs_diff"] > 1e-3 * max(1.0, chk["max_abs_output"]):
            lines.append("- **WARNING: the outputs differ; the two sides do not run the same "
                         "network, so the timings are not comparable.**")
            mismatch = True
    lines.append("- Ratio = PyTorch eager time / tweedie time (> 1: tweedie is faster).\n")

    hdr = f"| measurement | tweedie ({layout_names.get(layout_default, '?')}) | PyTorch eager | ratio |"
    sep = "|---|---:|---:|---:|"
    for L in alt_layouts:
        hdr += f" tweedie, {layout_names.get(L, L)} |"
        sep += "---:|"
    if eager_cl:
        hdr += " eager, channels-last |"
        sep += "---:|"
    if eager_m:
        hdr += " eager, tweedie's malloc settings | ratio to that |"
        sep += "---:|---:|"
    lines += [hdr, sep]
    for b in sorted(set(nfe_cpp) | set(eager["nfe"])):
        c, e = nfe_cpp.get(b), eager["nfe"].get(b)
        row = (f"| per-NFE latency, batch {b} (ms) | {fmt(c and c * 1e3)} | {fmt(e and e * 1e3)} | "
               f"{fmt(e / c if c and e else None)} |")
        for L in alt_layouts:
            alt = nfe_cpp_alt[L].get(b)
            row += f" {fmt(alt and alt * 1e3)} |"
        if eager_cl:
            ec = eager_cl["nfe"].get(b)
            row += f" {fmt(ec and ec * 1e3)} |"
        em = eager_m and eager_m["nfe"].get(b)
        if eager_m:
            row += f" {fmt(em and em * 1e3)} | {fmt(em / c if c and em else None)} |"
        lines.append(row)
        summary["nfe"][b] = {"tweedie_ms": c and c * 1e3, "eager_ms": e and e * 1e3,
                             "ratio": e / c if c and e else None,
                             "tweedie_layout": layout_names.get(layout_default),
                             "tweedie_other_layouts_ms": {layout_names.get(L, L): nfe_cpp_alt[L].get(b) and
                                                          nfe_cpp_alt[L][b] * 1e3 for L in alt_layouts},
                             "eager_channels_last_ms": eager_cl and eager_cl["nfe"].get(b) and
                             eager_cl["nfe"][b] * 1e3,
                             "eager_malloc_ms": em and em * 1e3,
                             "ratio_to_eager_malloc": em / c if c and em else None,
                             "tweedie_gflops": c and fpi * b / c / 1e9,
                             "eager_gflops": e and fpi * b / e / 1e9}
    if eager["train"]:
        b, e = eager["train"]
        c = train_cpp.get(b)
        layout = layout_names.get(train_layout_default, "?")
        if train_layout_default == "2":
            layout += ", NCHW under autograd"
        row = (f"| training step, batch {b}, {layout} (images/s) | {fmt(c and b / c)} | {fmt(b / e)} | "
               f"{fmt(e / c if c else None)} |")
        for L in alt_layouts:
            alt = train_cpp_alt[L].get(b)
            row += f" {fmt(alt and b / alt) if L != train_layout_default else '(headline)'} |"
        if eager_cl and eager_cl["train"]:
            row += f" {fmt(b / eager_cl['train'][1])} |"
        em = eager_m and eager_m["train"] and eager_m["train"][1]
        if eager_m:
            row += f" {fmt(em and b / em)} | {fmt(em / c if c and em else None)} |"
        lines.append(row)
        summary["train"] = {"batch": b, "tweedie_images_per_s": c and b / c,
                            "eager_images_per_s": b / e, "ratio": e / c if c else None,
                            "eager_channels_last_images_per_s":
                                eager_cl and eager_cl["train"] and b / eager_cl["train"][1],
                            "eager_malloc_images_per_s": em and b / em,
                            "ratio_to_eager_malloc": em / c if c and em else None,
                            "tweedie_gflops": c and 3 * fpi * b / c / 1e9,
                            "eager_gflops": 3 * fpi * b / e / 1e9}

    lines.append("\nProcess CPU time (all threads) of the same runs, minimum over repetitions. "
                 "When it is well below threads x wall time, the run was waiting for a core (a "
                 "loaded machine); the CPU-time ratio is then the steadier comparison.\n")
    lines.append("| CPU time | tweedie | PyTorch eager | ratio |")
    lines.append("|---|---:|---:|---:|")
    summary["cpu_time"] = {}
    for b in sorted(set(nfe_cpp_cpu) & set(eager["nfe_cpu"])):
        c, e = nfe_cpp_cpu[b], eager["nfe_cpu"][b]
        lines.append(f"| per NFE, batch {b} (ms) | {fmt(c * 1e3)} | {fmt(e * 1e3)} | {fmt(e / c)} |")
        summary["cpu_time"][f"nfe_{b}_ms"] = {"tweedie": c * 1e3, "eager": e * 1e3}
    if eager["train"] and eager["train"][0] in train_cpp_cpu:
        b = eager["train"][0]
        c, e = train_cpp_cpu[b], eager["train_cpu"]
        lines.append(f"| training step, batch {b} (s) | {fmt(c)} | {fmt(e)} | {fmt(e / c)} |")
        summary["cpu_time"][f"train_{b}_s"] = {"tweedie": c, "eager": e}

    lines.append("\n### Achieved throughput vs measured convolution throughput\n")
    lines.append(f"Machine conv throughput = best of the 3x3 convolution microbenchmarks below: "
                 f"**{conv_peak:.1f} GFLOP/s**. Achieved = flops_per_image x images / time "
                 "(training: 3 x the forward FLOPs for forward + backward; the AdamW update is "
                 "not counted).\n")
    lines.append("| workload | tweedie GFLOP/s | % of conv | eager GFLOP/s | % of conv |")
    lines.append("|---|---:|---:|---:|---:|")

    def pct(g):
        return f"{100 * g / conv_peak:.0f}%" if g else "n/a"

    for b, v in summary["nfe"].items():
        lines.append(f"| NFE, batch {b} | {fmt(v['tweedie_gflops'])} | {pct(v['tweedie_gflops'])} | "
                     f"{fmt(v['eager_gflops'])} | {pct(v['eager_gflops'])} |")
    if summary["train"]:
        v = summary["train"]
        lines.append(f"| training, batch {v['batch']} | {fmt(v['tweedie_gflops'])} | "
                     f"{pct(v['tweedie_gflops'])} | {fmt(v['eager_gflops'])} | "
                     f"{pct(v['eager_gflops'])} |")

    lines.append("\n| 3x3 conv microbenchmark (GFLOP/s) | LibTorch from C++ | PyTorch from Python |")
    lines.append("|---|---:|---:|")
    for name in sorted(set(conv_cpp) | set(eager["conv"])):
        lines.append(f"| {name} | {fmt(conv_cpp.get(name))} | {fmt(eager['conv'].get(name))} |")
        summary["conv"][name] = {"cpp_gflops": conv_cpp.get(name),
                                 "python_gflops": eager["conv"].get(name)}
    md = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(a.md)), exist_ok=True)
    with open(a.md, "w") as f:
        f.write(md)
    summary["cpp_best_seconds"] = best
    summary["cpp_context"] = ctx
    with open(a.json, "w") as f:
        json.dump(summary, f, indent=2, default=str)
        f.write("\n")
    return 1 if mismatch else 0


if __name__ == "__main__":
    raise SystemExit(main())
