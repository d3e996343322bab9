#!/usr/bin/python3
"""Runs every solver's registry examples on two problems (linear: SR x2 with Gaussian noise;
quantized: 1-bit CS) with two tweedie binaries and checks that the estimates are bitwise equal
and the reports identical apart from time and memory (issue 30: a refactor must not move a bit).

    scripts/compare-solvers.py BEFORE/tweedie AFTER/tweedie [--work DIR]

The examples come from the Python module in build/python (the library's registry). Exit 1 on
any difference, listing each.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

PROBLEMS = {
    "linear": ["--op", "sr-avg:factor=2", "--channel", "gaussian:sigma=0.05"],
    "quantized": ["--op", "gaussian:m=256", "--channel", "sign:sigma=0.3"],
}
VOLATILE = {"seconds", "peak_rss_bytes", "seconds_by_activity", "tweedie_git", "version", "output", "started", "finished"}


def examples():
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "build", "python"))
    import tweedie  # noqa: E402

    out = []
    for name, entry in tweedie.solvers().items():
        if entry["reference"]:
            continue  # exact: a Gaussian-mixture prior only, tested on its own
        for ex in entry["examples"]:
            method, _, rest = ex.partition(":")
            out.append((ex, method, [kv for kv in rest.split(",") if kv]))
    return out


def scrub(j):
    if isinstance(j, dict):
        return {k: scrub(v) for k, v in j.items() if k not in VOLATILE}
    if isinstance(j, list):
        return [scrub(v) for v in j]
    return j


def drift(a, b, path=""):
    """Where two JSON values differ: the leaf paths, with the relative difference of numbers."""
    if isinstance(a, dict) and isinstance(b, dict):
        return ", ".join(d for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)
                         for d in [drift(a.get(k), b.get(k), f"{path}.{k}" if path else k)])
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return ", ".join(drift(x, y, f"{path}[{i}]") for i, (x, y) in enumerate(zip(a, b)) if x != y)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return f"{path or 'value'} by {abs(a - b) / max(abs(a), abs(b), 1e-300):.1e} (relative)"
    return f"{path or 'value'} {a!r} -> {b!r}"


def run(binary, problem, method, sets, out):
    args = [binary, "solve", "--input", "fashion-mnist:test:0-1", *PROBLEMS[problem], "--method", method,
            "--threads", "1", "--quiet", "--seed", "3", "-o", out]
    for kv in sets:
        args += ["--set", kv]
    env = dict(os.environ)
    here = os.path.dirname(os.path.abspath(binary))
    if os.path.exists(os.path.join(here, "libtweedie.so")):  # a copy aside: its own library, not the RUNPATH's
        env["LD_LIBRARY_PATH"] = here
    p = subprocess.run(args, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        return None, p.stderr.strip()
    with open(os.path.join(out, "estimate.npy"), "rb") as f:
        est = f.read()
    with open(os.path.join(out, "report.json")) as f:
        rep = scrub(json.load(f))
    return (est, rep), ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--work", default=None)
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="tweedie-compare-")
    bad, n = [], 0
    for ex, method, sets in examples():
        for problem in PROBLEMS:
            tag = f"{ex} on {problem}"
            r0, e0 = run(a.before, problem, method, sets, os.path.join(work, "before", problem, ex.replace(":", "_")))
            r1, e1 = run(a.after, problem, method, sets, os.path.join(work, "after", problem, ex.replace(":", "_")))
            n += 1
            if r0 is None or r1 is None:
                if (e0 != e1):  # a refusal must stay the same refusal
                    bad.append(f"{tag}: before {e0 or 'ran'!r}, after {e1 or 'ran'!r}")
                else:
                    print(f"same refusal  {tag}: {e0}")
                continue
            if r0[0] != r1[0]:
                bad.append(f"{tag}: estimates differ")
            elif r0[1] != r1[1]:
                keys = sorted(k for k in set(r0[1]) | set(r1[1]) if r0[1].get(k) != r1[1].get(k))
                where = "; ".join(f"{k}: {drift(r0[1].get(k), r1[1].get(k))}" for k in keys)
                bad.append(f"{tag}: equal estimates, reports differ in {where}")
            else:
                print(f"bitwise equal {tag}")
    print(f"\n{n - len(bad)} of {n} runs identical")
    for b in bad:
        print("DIFFERENT     " + b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
