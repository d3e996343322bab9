#!/usr/bin/python3
"""Parity fixture for `qcs-sgm`: QCS-SGM's own annealed Langevin loop
(mengxiangming/QCS-SGM, models/__init__.py anneal_Langevin_dynamics_linear_inverse with
likelihood_score_onebit_diag) run on tweedie's converged prior and a small 1-bit CS problem.

What comes from the authors' repository (imported, not copied):
  * models.get_sigmas (the geometric σ grid, float32 as their NCSNv2 holds it);
  * datasets.data_transform (x ~ U[0, 1) mapped to [−1, 1] with data.rescaled: true);
  * runners.ncsn_runner.mat_by_vec and uniform_quantizer (y = sign(H x + noise), as in
    NCSNRunner.sample);
  * models.anneal_Langevin_dynamics_linear_inverse, called unchanged, once with
    final_only=False (the state before every Langevin step) and once, on the same random
    stream, with final_only=True (the final state).
What is ours:
  * `scorenet(x, labels)`: their loop calls an NCSNv2 score network s(x, σ_c) by level index.
    We pass tweedie's DDPM ε-network on its variance-exploding view:
        D(x, σ) = x − σ ε_θ(x/√(1+σ²), t(σ)),   s(x, σ) = (D(x, σ) − x)/σ²  (= −ε_θ/σ),
    t(σ) the fractional timestep interpolating log σ over the 1000-step linear schedule
    (k-diffusion's sigma_to_t, tweedie/diffusion/denoiser.h), no clamping of D. This is what
    qcs_sgm.cpp computes with clip_denoised=false; the test checks it on a stored probe.
  * the problem: 2 Fashion-MNIST test images on [−1, 1] (their MNIST config uses [0, 1]; the
    loop is coordinate-free, and [−1, 1] is the prior's range); H is their Gaussian
    randn(M, N)/√M rounded to multiples of 1/(32√M) (int8 codes, so the fixture stays small).

Run: /usr/bin/python3 tests/parity/gen/qcs_sgm.py --repo /work/.mirror/mengxiangming+QCS-SGM/repo \
         --unet-repo /work/.mirror/DPS2022+diffusion-posterior-sampling/repo
"""
import contextlib
import importlib
import io
import os
import sys
import types

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

# the problem and the loop's settings
INDICES = [0, 1]
M = 200                 # rows of H (configs/mnist.yml measure_size 200)
SIGMA_NOISE = 0.28      # seed 001 Table I, sign:sigma=0.28; their noise_variance = σ²
SIGMA_BEGIN = 1.0       # configs/mnist.yml anneals σ 50 → 0.01 over 232 levels on [0, 1] data; with 4
SIGMA_END = 0.02        # levels σ_1 = 100 would leave noise of that scale, so σ_1 = 1 ([−1, 1] images)
LEVELS = 4              # few levels and steps so that the fixture stays small
STEPS_EACH = 2
STEP_LR = 2e-4          # tweedie's default ε (α_L/σ_L² = 0.5, as configs/ffhq.yml 1-bit)
LIKELIHOOD_SCALE = 1.0
A_CODE_SCALE = 32       # H = q/(32√M), q = round(32·g) clamped to int8, g ~ N(0, 1)


def lenient_stub(name):
    """A module whose every attribute is a harmless placeholder (imports the code path we call
    never uses: torchvision, PIL, lmdb, tqdm, skimage, pandas, pytorch_msssim, torchmetrics)."""
    m = types.ModuleType(name)
    m.__path__ = []

    def __getattr__(attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return type(attr, (), {"__init__": lambda self, *a, **k: None})

    m.__getattr__ = __getattr__
    sys.modules[name] = m
    return m


STUBBED = ["torchvision", "torchvision.datasets", "torchvision.transforms", "torchvision.utils", "PIL",
           "PIL.Image", "lmdb", "tqdm", "skimage", "skimage.metrics", "pandas", "pytorch_msssim", "torchmetrics",
           "torchmetrics.functional"]


def import_qcs(tree):
    """Their modules, from `tree` (first on sys.path)."""
    for n in STUBBED:
        if n not in sys.modules:
            lenient_stub(n)
    models = importlib.import_module("models")
    datasets = importlib.import_module("datasets")
    runner = importlib.import_module("runners.ncsn_runner")
    assert os.path.abspath(models.__file__).startswith(os.path.abspath(tree)), models.__file__
    return models, datasets, runner


def import_unet(tree):
    sys.path.insert(0, tree)
    return importlib.import_module("guided_diffusion.unet")


def ns(**kw):
    return types.SimpleNamespace(**kw)


def ve_log_sigmas():
    """log σ_i = log √((1−ᾱ_i)/ᾱ_i) of the prior's linear 1000-step schedule (float64)."""
    alphas_cumprod = np.cumprod(1.0 - common.linear_betas(1000))
    return np.log(np.sqrt((1.0 - alphas_cumprod) / alphas_cumprod))


def sigma_to_t(log_sigmas, sigma):
    """k-diffusion DiscreteSchedule.sigma_to_t (tweedie/diffusion/denoiser.cpp one_sigma_to_t)."""
    ls = float(np.log(sigma))
    n = len(log_sigmas)
    count = int(np.searchsorted(log_sigmas, ls, side="right"))
    low = min(max(count - 1, 0), n - 2)
    w = (log_sigmas[low] - ls) / (log_sigmas[low] - log_sigmas[low + 1])
    w = min(max(w, 0.0), 1.0)
    return (1.0 - w) * low + w * (low + 1)


class EpsAsScore:
    """Their scorenet(x, labels) interface over our ε-network: s(x, σ_c) = (D(x, σ_c) − x)/σ_c²,
    D(x, σ) = x − σ ε_θ(x/√(1+σ²), t(σ)). `sigmas` are the level values their loop anneals over."""

    def __init__(self, unet, sigmas):
        self.unet = unet
        self.sigmas = [float(s) for s in sigmas]
        self.log_sigmas = ve_log_sigmas()
        self.calls = 0

    def score(self, x, sigma):
        c_in = 1.0 / np.sqrt(1.0 + sigma * sigma)
        t = torch.full((x.shape[0],), sigma_to_t(self.log_sigmas, sigma), dtype=torch.float64).float()
        c_in_t = torch.full((x.shape[0], 1, 1, 1), c_in, dtype=torch.float64).float()
        sig_t = torch.full((x.shape[0], 1, 1, 1), sigma, dtype=torch.float64).float()
        eps = self.unet(x * c_in_t, t)
        d = x - sig_t * eps                  # D(x, σ) = x − σ ε
        return (d - x) / (sigma * sigma)     # s = (D − x)/σ²

    def __call__(self, x, labels):
        levels = set(int(c) for c in labels)
        assert len(levels) == 1, labels
        self.calls += 1
        with torch.no_grad():
            return self.score(x, self.sigmas[levels.pop()])


def main():
    args = common.parser(__doc__.split("\n")[0], "qcs-sgm")
    args.add_argument("--unet-repo", default="/work/.mirror/DPS2022+diffusion-posterior-sampling/repo",
                      help="a repository with guided-diffusion's guided_diffusion/unet.py (the prior's network)")
    a, tree, commit = common.begin(args)
    unet_tree, unet_commit = common.work_tree(a.unet_repo)
    models, datasets, runner = import_qcs(tree)
    unet = common.load_unet(import_unet(unet_tree))

    # their config (configs/mnist.yml's layout) with our settings
    config = ns(device=torch.device("cpu"),
                model=ns(sigma_dist="geometric", sigma_begin=SIGMA_BEGIN, sigma_end=SIGMA_END, num_classes=LEVELS),
                data=ns(image_size=32, channels=1, rescaled=True, logit_transform=False,
                        uniform_dequantization=False, gaussian_dequantization=False),
                measurements=ns(measure_size=M, noise_variance=SIGMA_NOISE ** 2, quantization=True, quantize_bits=1),
                sampling=ns(batch_size=len(INDICES), n_steps_each=STEPS_EACH, step_lr=STEP_LR,
                            likelihood_scale=LIKELIHOOD_SCALE))
    sigmas_th = models.get_sigmas(config)     # float32, as NCSNRunner.sample
    sigmas = sigmas_th.cpu().numpy()
    score = EpsAsScore(unet, sigmas)

    refer_images = common.fmnist_images(INDICES)  # [B, 1, 32, 32] in [−1, 1]
    B, N = refer_images.shape[0], refer_images[0].numel()

    torch.manual_seed(12345)  # main.py's default seed
    # NCSNRunner.sample: init_samples = data_transform(config, torch.rand(1, width, C, H, W))
    with common.DrawRecorder() as rec_init:
        init_samples = datasets.data_transform(config, torch.rand(1, B, 1, 32, 32))
    # H_mat = randn(M, N)/√M (rounded to the int8 grid), y = quantize(H x + noise)
    codes = torch.round(torch.randn(M, N) * A_CODE_SCALE).clamp(-127, 127).to(torch.int8)
    a_scale = torch.tensor([1.0 / (A_CODE_SCALE * np.sqrt(M))], dtype=torch.float32)
    H = codes.float() * a_scale
    y_clean = runner.mat_by_vec(H, refer_images)
    y_linear = y_clean + torch.randn_like(y_clean) * np.sqrt(config.measurements.noise_variance)
    y, y_lower, y_upper = runner.uniform_quantizer(y_linear, 1)
    assert bool((y != 0).all())

    def loop(final_only):
        with contextlib.redirect_stdout(io.StringIO()), common.DrawRecorder() as rec:
            out = models.anneal_Langevin_dynamics_linear_inverse(
                init_samples.clone(), y, y_lower, y_upper, config.measurements.quantize_bits, score, sigmas, H,
                config.measurements.noise_variance, config.data.image_size, config.sampling.n_steps_each,
                config.sampling.step_lr, config.sampling.likelihood_scale, config.measurements.quantization,
                final_only=final_only)
        return out, rec.draws

    state = torch.get_rng_state()
    images, draws = loop(False)   # the state before each of the L·n Langevin steps
    torch.set_rng_state(state)
    final, draws_again = loop(True)
    assert len(draws) == len(draws_again) and all(torch.equal(p[1], q[1]) for p, q in zip(draws, draws_again))
    assert len(images) == LEVELS * STEPS_EACH and score.calls == 2 * LEVELS * STEPS_EACH
    # the state at the end of level c: before the first step of level c+1; the last is the final
    traj = [images[(c + 1) * STEPS_EACH] for c in range(LEVELS - 1)] + [final[0]]
    traj = torch.stack([t.view(B, 1, 32, 32) for t in traj])

    # checks of the mapping the test repeats: the wrapper's score at the initial x and level 1,
    # H x of the initial x by their mat_by_vec, diag(H Hᵀ) as their loop computes it
    x_init = init_samples.view(B, 1, 32, 32)
    score_probe = score(x_init, torch.ones(B, dtype=torch.long))
    score.calls -= 1
    Ax_init = runner.mat_by_vec(H, x_init)
    diag = torch.from_numpy(np.diag(torch.matmul(H, H.t()).cpu().numpy()).copy())
    # how many measurements are violated beyond their Φ clamp (y = +1 with Φ < 1e-6, y = −1 with
    # Φ > 1 − 1e-6) at the last level's start and end: there the authors' form differs from ours
    def clamped(x, sigma):
        v = config.measurements.noise_variance + diag * float(sigma) ** 2
        phi = torch.erfc(-runner.mat_by_vec(H, x) / torch.sqrt(2 * v)) / 2
        return float((((y > 0) & (phi < 1e-6)) | ((y < 0) & (phi > 1 - 1e-6))).float().mean())
    clamp_fraction = {"last level start": clamped(images[-STEPS_EACH], sigmas[-1]), "final": clamped(traj[-1], sigmas[-1])}

    meta = {
        "solver": "qcs-sgm",
        "repository": "mengxiangming/QCS-SGM",
        "commit": commit,
        "function": "models/__init__.py anneal_Langevin_dynamics_linear_inverse (1-bit: likelihood_score_onebit_diag)",
        "unet_repository": {"path": "guided_diffusion/unet.py (UNetModel)", "commit": unet_commit,
                            "weights": "models/fmnist32-long/model.safetensors"},
        "settings": {"images": f"fashion-mnist:test:{INDICES}", "batch": B, "M": M, "N": N,
                     "channel": f"sign:sigma={SIGMA_NOISE}", "noise_variance": SIGMA_NOISE ** 2,
                     "sigma_begin": SIGMA_BEGIN, "sigma_end": SIGMA_END, "levels": LEVELS,
                     "steps_each": STEPS_EACH, "step_lr": STEP_LR, "likelihood_scale": LIKELIHOOD_SCALE,
                     "quantize_bits": 1, "seed": 12345, "sigmas_float32": [float(s) for s in sigmas],
                     "tweedie": [f"sigma_begin={SIGMA_BEGIN!r}", f"sigma_end={SIGMA_END!r}", f"levels={LEVELS}", f"steps_each={STEPS_EACH}",
                                 f"step_lr={STEP_LR!r}", f"likelihood_scale={LIKELIHOOD_SCALE!r}", "clip_denoised=false",
                                 "phi_clamp=1e-6"]},
        "wrapper": ("scorenet(x, labels) = s(x, σ_c) = (D(x, σ_c) − x)/σ_c² = −ε_θ(x/√(1+σ_c²), t(σ_c))/σ_c with "
                    "D(x, σ) = x − σ ε_θ(x/√(1+σ²), t(σ)), t(σ) k-diffusion's log-σ interpolation over the linear "
                    "1000-step schedule, σ_c = their get_sigmas (float32) at the level index; D not clamped. "
                    "Equals qcs_sgm.cpp's prior score with clip_denoised=false (checked on score_probe)."),
        "coordinates": ("[−1, 1] images: data.rescaled true, so their init data_transform(U[0,1)) = 2U − 1, tweedie's "
                        "init; H acts on the [−1, 1] image, y = sign(H x + N(0, σ²))"),
        "operator": (f"dense H = A_codes · A_scale ([M, N] int8 codes, scale 1/({A_CODE_SCALE}√M)): their "
                     "randn(M, N)/√M rounded to that grid"),
        "stubbed": STUBBED,
        "patched": "nothing of theirs; the score network is the wrapper above",
        "draws_order": ("init rand [1, B, 1, 32, 32]; then one randn_like per Langevin step (H and the measurement "
                        "noise are not replayed: A and y are stored)"),
        "trajectory": ("traj_x [L, B, 1, 32, 32]: x at the end of each noise level (their images[(c+1)·n], and the "
                       "final_only result for the last level) = what qcs_sgm reports per level"),
        "phi_clamp_binding_fraction": clamp_fraction,
        "final_mse_to_truth": float((traj[-1] - refer_images).pow(2).mean()),
        "probe": "score_probe: the wrapper's s(x, σ_2) at x = the initial sample (draw 0 mapped by 2U − 1), level index 1",
    }
    tensors = {"A_codes": codes, "A_scale": a_scale, "y": y, "Ax_init": Ax_init, "diag_AAt": diag,
               "score_probe": score_probe, "traj_x": traj}
    all_draws = rec_init.draws + draws
    common.write_fixture(a.out, meta, tensors, all_draws)
    print(f"final MSE to the truth {meta['final_mse_to_truth']:.4f}; Φ clamp binds {clamp_fraction}")


if __name__ == "__main__":
    main()
