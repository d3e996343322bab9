"""1-bit compressed sensing from Python: the same run as examples/cpp/onebit_cs.cpp, then the
same solver with your own denoiser as the prior.

    PYTHONPATH=<prefix>/lib/python3/dist-packages /usr/bin/python3 examples/python/onebit_cs.py
    (in the build tree: PYTHONPATH=build/python)

Writes onebit_cs.png (truth | estimate rows) when matplotlib is installed.
"""
import sys

import torch
import tweedie


# %% The shipped prior, 1-bit Gaussian measurements (m = 512 of n = 1024), Diff-OneBit.
x = tweedie.load_images("fashion-mnist:test:0-3")          # [4, 1, 32, 32] in [-1, 1]
problem = tweedie.Problem("gaussian:m=512", "sign:sigma=0.3", shape=(1, 32, 32), seed=0)
y = problem.simulate(x)
x_hat, cost = tweedie.solve("diff-onebit", problem, y, seed=0)
print(f"diff-onebit on {x.shape[0]} images: mean PSNR {tweedie.psnr(x_hat, x).mean().item():.2f} dB, "
      f"NFE {cost['nfe']}, {cost['seconds']:.1f} s")

# %% Your own denoiser: any callable (x, sigma) -> E[x0 | x]. Here the posterior mean of a
# Gaussian prior N(mu, s^2) fitted to a few training images; a PyTorch model works the same way.
train = tweedie.load_images("fashion-mnist:train:0-999")
mu, s2 = train.mean(0, keepdim=True), train.var(0, keepdim=True)


def gaussian_denoiser(x_noisy, sigma):
    w = s2 / (s2 + sigma ** 2)
    return mu + w * (x_noisy - mu)


x_gauss, cost_gauss = tweedie.solve("diff-onebit", problem, y, prior=gaussian_denoiser, seed=0)
print(f"diff-onebit with a Gaussian denoiser: mean PSNR {tweedie.psnr(x_gauss, x).mean().item():.2f} dB, "
      f"NFE {cost_gauss['nfe']}")

# %% A figure, when matplotlib is there.
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    sys.exit(0)
rows = [("truth", x), ("diffusion prior", x_hat), ("Gaussian denoiser", x_gauss)]
fig, axes = plt.subplots(len(rows), x.shape[0], figsize=(2 * x.shape[0], 2 * len(rows)))
for r, (name, images) in enumerate(rows):
    for c in range(x.shape[0]):
        axes[r, c].imshow(images[c, 0].clamp(-1, 1).numpy(), cmap="gray", vmin=-1, vmax=1)
        axes[r, c].set_xticks([]), axes[r, c].set_yticks([])
    axes[r, 0].set_ylabel(name)
fig.savefig("onebit_cs.png", dpi=100, bbox_inches="tight")
print("wrote onebit_cs.png")
