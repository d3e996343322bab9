"""The mixture world of issue 27 item 4(d), shared by hqs_eps_trace.py and hqs_level_oracle.py:
data drawn from the Gaussian-mixture prior the solver uses (results/gmm-world/draws.npy), so the
denoiser is exact and the truth of every item is known, measured by seed 001's Table I problem
(1-bit CS, M/N = 1/2, sign with sigma = 0.28). Diff-OneBit's settings are the scripts' options."""
import argparse

import numpy as np
import torch

import tweedie

PRIOR = "gmm:models/fmnist-gmm/gmm.safetensors"


def setup(description, out_default):
    """(args, prior, x_true, problem, y) from the command line: -o, --count, --steps, --lambda_."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("-o", "--out", default=out_default)
    ap.add_argument("--count", type=int, default=100, help="mixture draws (results/gmm-world/draws.npy)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--lambda_", type=float, default=0.05)
    args = ap.parse_args()
    torch.set_num_threads(1)
    prior = tweedie.load_prior(PRIOR)
    x_true = torch.from_numpy(np.load("results/gmm-world/draws.npy")[: args.count]).float()
    problem = tweedie.Problem("gaussian:ratio=0.5", "sign:sigma=0.28", shape=tuple(x_true.shape[1:]))
    return args, prior, x_true, problem, problem.simulate(x_true)
