"""The F11 tables of docs/results.md ("At full size"): PSNR mean ± SE per task and method, and the
paired MO − baseline differences with their SE and the images on which MO is ahead, read from the
cells of `tweedie experiment experiments/seed002-full-first3.json` (results/seed002/full/).

    /usr/bin/python3 experiments/scripts/seed002_full_tables.py
"""
import json
import math
import os

HERE = os.path.dirname(os.path.abspath(__file__))
root = os.path.join(HERE, '..', '..', 'results', 'seed002', 'full', 'cells')
cfg = json.load(open(os.path.join(HERE, '..', 'seed002-full-first3.json')))
setf = {m['label']: m.get('set_for', {}) for m in cfg['methods']}
names = {'random70': 'random inpainting 70 %', 'motion': 'motion deblur', 'hdr': 'HDR'}
def load(task, label):
    p = os.path.join(root, task, label, 'default', 'cell.json')
    return json.load(open(p))['metrics']['psnr'] if os.path.exists(p) else None
def ms(v):
    n = len(v); m = sum(v) / n
    return m, math.sqrt(sum((x - m) ** 2 for x in v) / (n - 1) / n)
def fmt(v):
    if not v: return "running"
    m, se = ms(v); return f"{m:.2f} ± {se:.2f}"
def pair(a, b):
    if not a or not b: return "—"
    d = [x - y for x, y in zip(a, b)]; m, se = ms(d)
    s = f"{m:+.2f} ± {se:.2f} ({sum(x > 0 for x in d)}/50)".replace('-', '−')
    return f"**{s}**" if abs(m) > 2 * se else s
def setting(label, task):
    return ", ".join(f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} {v}" for k, v in setf[label].get(task, {}).items())
print("| task | DPS-MO 100 | DPS 100 | DPS 1000 | RED-diff-MO 100 | RED-diff 100 | RED-diff 1000 |")
print("|---|---|---|---|---|---|---|")
cells = {}
for t in ['random70', 'motion', 'hdr']:
    c = {l: load(t, l) for l in ['dps-mo', 'dps-100', 'dps', 'red-diff-mo', 'red-diff-100', 'red-diff']}
    cells[t] = c
    print(f"| {names[t]} | " + " | ".join(fmt(c[l]) for l in ['dps-mo', 'dps-100', 'dps', 'red-diff-mo', 'red-diff-100', 'red-diff']) + " |")
print()
print("| task | settings (validation choice) | DPS-MO 100 − DPS 1000 | DPS-MO 100 − DPS 100 | RED-diff-MO 100 − RED-diff 1000 | RED-diff-MO 100 − RED-diff 100 |")
print("|---|---|---|---|---|---|")
for t, c in cells.items():
    s = f"DPS ζ {setf['dps'][t]['zeta']:g}; RED-diff λ {setf['red-diff'][t]['lambda']:g}, lr {setf['red-diff'][t]['lr']:g}; DPS-MO ({setting('dps-mo', t)}); RED-diff-MO ({setting('red-diff-mo', t)})"
    print(f"| {names[t]} | {s} | {pair(c['dps-mo'], c['dps'])} | {pair(c['dps-mo'], c['dps-100'])} | {pair(c['red-diff-mo'], c['red-diff'])} | {pair(c['red-diff-mo'], c['red-diff-100'])} |")
