"""Issue 27 item 4(d): why does Diff-OneBit's deterministic path (zeta = 0) lose?

In the mixture world (data drawn from the Gaussian-mixture prior the solver uses, so the denoiser
is exact and the truth x0 of every item is known), run Diff-OneBit on seed 001's Table I problem
and follow the noise the state carries. At each step k with state x_t (the input of the step):

  eps_true = (x_t - sqrt(ab_t) x0_true) / sqrt(1 - ab_t)      the noise x_t actually holds
  eps_den  = eps(x_t, t), the (exact) denoiser's estimate of it
  eps_corr = (x_t - sqrt(ab_t) x0') / sqrt(1 - ab_t)           the corrected one that zeta = 0
                                                               re-noises with (x0': after the data step)

and report per step, averaged over items: the RMS of eps_true and eps_corr (a noise sample has
RMS 1), the angles (degrees) eps_corr vs eps_true, eps_corr vs eps_den and eps_den vs eps_true,
and the PSNR of x0'. Runs through the tweedie Python module (build/python).

    PYTHONPATH=build/python /usr/bin/python3 experiments/scripts/hqs_eps_trace.py -o results/gmm-world/eps-trace
"""
import json
import math
import os

import numpy as np
import torch

import tweedie
from gmm_world import setup

args, prior, x_true, problem, y = setup(__doc__.split("\n")[0], "results/gmm-world/eps-trace")

# The schedule Diff-OneBit walks: ddim<steps> of the linear 1000-step schedule, t = 0, T/K, ...
betas = np.linspace(1e-4, 0.02, 1000, dtype=np.float64)
ab_all = np.cumprod(1 - betas)
ts = list(range(0, 1000, 1000 // args.steps))[::-1]  # the order the steps run: 950, ..., 0


def flat(t):
    return t.reshape(t.shape[0], -1).double()


def angle(a, b):
    a, b = flat(a), flat(b)
    c = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-30)
    return torch.rad2deg(torch.arccos(c.clamp(-1, 1)))


def rms(a):
    return flat(a).square().mean(1).sqrt()


def trace(zeta):
    states, x0s = [], []

    def cb(info, x0):
        x0s.append(x0.clone())
        states.append(info.get("state"))
        return True

    sol = tweedie.solve("diff-onebit", problem, y, prior=prior, seed=0, callback=cb, steps=args.steps,
                        zeta=zeta, clip_denoised=False, **{"lambda": args.lambda_})
    rows = []
    x_t = None
    for k, t in enumerate(ts):
        if k == 0:
            x_t = None  # the first state is the N(0, I) draw, not reported; start from step 2
        else:
            x_t = states[k - 1]
        if x_t is None:
            continue
        ab = ab_all[t]
        s, c = math.sqrt(ab), math.sqrt(1 - ab)
        eps_true = (x_t - s * x_true) / c
        eps_den = prior.eps(x_t, t)  # the exact mixture's eps at the base step t
        eps_corr = (x_t - s * x0s[k]) / c
        psnr = tweedie.psnr(x0s[k].clamp(-1, 1), x_true)
        rows.append({"step": k + 1, "t": t, "sigma": c / s,
                     "rms_true": rms(eps_true).mean().item(), "rms_corr": rms(eps_corr).mean().item(),
                     "rms_den": rms(eps_den).mean().item(),
                     "angle_corr_true": angle(eps_corr, eps_true).mean().item(),
                     "angle_corr_den": angle(eps_corr, eps_den).mean().item(),
                     "angle_den_true": angle(eps_den, eps_true).mean().item(),
                     "psnr_x0": float(np.mean(psnr.tolist() if torch.is_tensor(psnr) else psnr))})
    final = tweedie.psnr(sol.estimate.clamp(-1, 1), x_true)
    return rows, float(np.mean(final.tolist() if torch.is_tensor(final) else final)), sol.cost


os.makedirs(args.out, exist_ok=True)
report = {"config": vars(args), "prior": "gmm:models/fmnist-gmm/gmm.safetensors", "problem":
          {"op": problem.op, "channel": problem.channel}, "runs": {}}
lines = ["# Diff-OneBit's re-noising noise, step by step (mixture world, issue 27 item 4(d))", "",
         f"{args.count} mixture draws, 1-bit CS (M/N = 1/2, sigma = 0.28), lambda = {args.lambda_}, "
         f"{args.steps} steps, no clipping; means over items. RMS of a true noise sample is 1; angles in degrees.", ""]
for zeta in (0.0, 1.0):
    rows, final, cost = trace(zeta)
    report["runs"][str(zeta)] = {"steps": rows, "final_psnr": final, "cost": cost}
    lines += [f"## zeta = {zeta:g}: final PSNR {final:.2f} dB", "",
              "| step | t | sigma | RMS eps_true | RMS eps_corr | RMS eps_den | angle(corr, true) | angle(corr, den) | angle(den, true) | PSNR x0' |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['step']} | {r['t']} | {r['sigma']:.3f} | {r['rms_true']:.3f} | {r['rms_corr']:.3f} | "
                     f"{r['rms_den']:.3f} | {r['angle_corr_true']:.1f} | {r['angle_corr_den']:.1f} | "
                     f"{r['angle_den_true']:.1f} | {r['psnr_x0']:.2f} |")
    lines.append("")
with open(os.path.join(args.out, "trace.json"), "w") as f:
    json.dump(report, f, indent=1)
with open(os.path.join(args.out, "trace.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
print("\n".join(lines))
