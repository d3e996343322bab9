#!/usr/bin/python3
"""Checks the include graph of tweedie's rooms (docs/architecture.md): every #include "tweedie/..."
must point to the same room or to a lower layer, so no arrow goes back up and there is no cycle.

    scripts/check-layers.py [ROOT]

Prints the room graph; exit 1 listing each include that breaks the order.
"""
import collections
import glob
import os
import re
import sys

# Layer of each room, lowest first; a room may include rooms of lower layers only.
LAYERS = {
    "core": 0,
    "io": 1, "op": 1, "channel": 1, "lowrank": 1,
    "data": 2, "diffusion": 2, "problem": 2,
    "metric": 3, "solve": 3,
    "experiment": 4,
    "cli": 5, "python": 5,
}


def room(path):
    parts = path.split("/")
    if parts[0] == "tweedie":
        return parts[1] if len(parts) > 2 else os.path.splitext(parts[1])[0]  # tweedie/problem.h: its own room
    return parts[0]


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    os.chdir(root)
    files = [f for pattern in ("tweedie/**/*.h", "tweedie/**/*.cpp", "cli/*.h", "cli/*.cpp", "python/*.h", "python/*.cpp")
             for f in glob.glob(pattern, recursive=True)]
    edges, bad = collections.defaultdict(set), []
    for f in sorted(files):
        src = room(f)
        if src not in LAYERS:
            bad.append(f"{f}: room '{src}' has no layer in scripts/check-layers.py")
            continue
        for n, line in enumerate(open(f, encoding="utf-8"), 1):
            m = re.match(r'\s*#\s*include\s+"(tweedie/[^"]+)"', line)
            if not m:
                continue
            dst = room(m.group(1))
            if dst == src:
                continue
            edges[src].add(dst)
            if dst not in LAYERS or LAYERS[dst] >= LAYERS[src]:
                bad.append(f"{f}:{n}: {src} (layer {LAYERS[src]}) includes {m.group(1)} ({dst}, layer {LAYERS.get(dst)})")
    if not files:
        bad.append("no sources found under " + os.getcwd())
    for src in sorted(edges, key=lambda r: (LAYERS.get(r, 99), r)):
        print(f"{src} -> {', '.join(sorted(edges[src], key=lambda r: (LAYERS.get(r, 99), r)))}")
    print(f"{sum(len(v) for v in edges.values())} arrows between {len(LAYERS)} rooms, {len(files)} files")
    for b in bad:
        print("BAD", b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
