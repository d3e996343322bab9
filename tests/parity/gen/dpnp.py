"""DPnP parity fixtures: the authors' loops (x1xu/diffusion-plug-and-play) on 4x super-resolution.

Runs, from the authors' repository imported at generation time:
  guided_diffusion.gaussian_diffusion.create_sampler -> DDIMPnP ('ddim-pnp') or DDPMPnP
  ('ddpm-pnp') and its p_sample_loop, which calls their DDIMDenoiser / DDPMDenoiser (.gen_schedule,
  .denoise) and guided_diffusion.condition_methods MALASampling ('mala', the PCS) through
  measurement_cond_fn; the operator is their measurements.SuperResolutionOperator (util.resizer's
  antialiased bicubic, factor 4) and y gets their GaussianNoise;
with their guided_diffusion.unet.UNetModel carrying tweedie's converged prior (models/fmnist32-long,
out_channels = 1; their p_mean_variance then reads the variance channels from the same output,
which only the unused variance uses).

Their script (sample_condition.py) runs one image at a time ("Larger batch size is not
available"; MALA's step uses the misfit summed over the batch), so the loop is called once per
image and each recorded draw is stacked over the images into one [2, ...] draw: our solver at
batch 2 (per-item misfits) consumes exactly these.

Patched (meta.json lists it): MALASampling's loop runs `range(1000)` PCS steps, hard-coded; the
module's `range` is rebound so that it runs PCS_STEPS (the only `range` on the 'mala' path).
DDPMDenoiser.denoise draws w at every step and adds it for t != 0 only: the unused last draw of each
call is dropped from the record (our sampler does not draw it). DDIMDenoiser/DDPMDenoiser.denoise
and the PCS are wrapped to record their outputs (the trajectory).

Also stored: DDIMDenoiser.gen_schedule's grid (alphas_cumprod, _mapping_t) at many η, for the
test of our dds_grid=code.

    /usr/bin/python3 tests/parity/gen/dpnp.py --repo /work/.mirror/x1xu+diffusion-plug-and-play/repo
"""
import builtins
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

IMAGES = [0, 1]       # Fashion-MNIST test indices
NOISE_SIGMA = 0.05    # measurement.noise.sigma (y = A x + 0.05 n)
FACTOR = 4            # super_resolution scale_factor
PCS_STEPS = 4         # MALASampling's hard-coded 1000, patched
# conditioning.params of 'mala': scale s, multiplier σ_m, reg (defaults 0.5, 0.15, 50; the
# values here make the drift visible in few steps)
MALA = dict(scale=0.8, multiplier=0.2, reg=5.0)
# DPnP's annealing (diffusion_config_pnp.yaml params); small so that the fixtures stay small:
# the stochastic DDS draws one image per base step with τ_t < η²
RUNS = {
    "dpnp-ddim": dict(sampler="ddim-pnp", params=dict(eta_max=0.4, eta_min=0.2, k_start=1, k=2)),
    "dpnp-ddpm": dict(sampler="ddpm-pnp", params=dict(eta_max=0.05, eta_min=0.03, k_start=0, k=2)),
}
# η at which gen_schedule's grid is stored: the default schedule's (0.4 x4, then 12 from 0.4 to
# 0.16 geometric), each skip branch and its edges, and η = 10, past the end-of-grid quirk
GRID_ETAS = list(np.concatenate([np.repeat([0.4], 4), np.exp(np.linspace(np.log(0.4), np.log(0.16), 12))])) + \
    [0.02, 0.05, 0.1, 0.3, 0.3001, 0.5, 0.75, 0.7501, 1.0, 2.0, 10.0]


def stub_imports():
    """Modules their import chain names but these code paths never use."""
    class _Bar:  # p_sample_loop's progress bar: iterated, len(), set_postfix
        def __init__(self, it):
            self.it = list(it)

        def __iter__(self):
            return iter(self.it)

        def __len__(self):
            return len(self.it)

        def set_postfix(self, *a, **k):
            pass

    common.stub_module("tqdm.auto", tqdm=_Bar)
    # matplotlib.pyplot (progress images, record=False), scipy (util.img_utils' imports),
    # torchvision (measurements.py imports only `torch` from it)
    common.stub_modules("matplotlib.pyplot", "scipy")
    common.stub_module("torchvision", torch=torch)


def diffusion_config(sampler):
    # configs/diffusion_config_pnp.yaml, model_var_type as there (learned_range)
    return dict(sampler=sampler, steps=1000, noise_schedule="linear", model_mean_type="epsilon",
                model_var_type="learned_range", dynamic_threshold=False, clip_denoised=True,
                rescale_timesteps=False, timestep_respacing=1000)


def run(name, spec, model, gd, cm, operator, noiser, x_true):
    cfg = diffusion_config(spec["sampler"])
    sampler = gd.create_sampler(adjust_color=False, warm_start=False, **cfg)
    cond_method = cm.get_conditioning_method("mala", operator, noiser, **MALA)

    def run_one(b, ref_img):
        torch.manual_seed(100 + b)
        y = operator.forward(ref_img)
        y_n = noiser(y)
        events = []  # ("pcs" | "dds", output) in call order

        def cond_fn(_events=events, **kw):
            out, dist = cond_method.conditioning(**kw)
            _events.append(("pcs", out.detach().clone()))
            return out, dist

        with common.DrawRecorder() as rec:
            saved = {}

            def wrap(cls, drop_last):
                orig = cls.denoise
                saved[cls] = orig

                def denoise(self, noise_lvl, model, x_noisy, eta=0.0):
                    n0 = len(rec.draws)
                    out = orig(self, noise_lvl, model, x_noisy, eta)
                    if drop_last:  # DDPMDenoiser: w of t = 0 is drawn, never added
                        assert len(rec.draws) == n0 + len(self.ts)
                        rec.draws.pop()
                    events.append(("dds", out.detach().clone()))
                    return out

                cls.denoise = denoise

            wrap(gd.DDIMDenoiser, False)
            wrap(gd.DDPMDenoiser, True)
            try:
                # sample_condition.py: x_start ~ N(0, I), then the sampler's loop
                x_start = torch.randn(ref_img.shape).requires_grad_()
                sample = sampler.p_sample_loop(model=model, x_start=x_start, measurement=y_n,
                                               measurement_cond_fn=cond_fn, record=False, save_root=None,
                                               default_cond_fn=None, **spec["params"])
            finally:
                for cls, orig in saved.items():
                    cls.denoise = orig
        # our solver reports x after each outer step: ddim-pnp's DDS output; ddpm-pnp's PCS
        # output, and the last DDS's
        if spec["sampler"] == "ddim-pnp":
            traj = [x for kind, x in events if kind == "dds"]
        else:
            traj = [x for kind, x in events if kind == "pcs"] + [events[-1][1]]
        return y_n, traj, sample, rec.draws

    return (cfg,) + common.per_image(x_true, run_one)


def main():
    args, tree, commit = common.begin(common.parser(__doc__.splitlines()[0], "dpnp-ddim"))
    out_root = os.path.dirname(os.path.abspath(args.out))
    stub_imports()
    from guided_diffusion import condition_methods as cm
    from guided_diffusion import gaussian_diffusion as gd
    from guided_diffusion import unet as their_unet
    from guided_diffusion.measurements import get_noise, get_operator

    # MALASampling's `for i in range(1000)`: the module's only range on this path
    cm.range = lambda n, *rest: builtins.range(PCS_STEPS) if (n == 1000 and not rest) else builtins.range(n, *rest)

    model = common.load_unet(their_unet)
    x_true = common.fmnist_images(IMAGES)
    operator = get_operator(name="super_resolution", in_shape=(1, 1, 32, 32), scale_factor=FACTOR, device="cpu")
    noiser = get_noise(name="gaussian", sigma=NOISE_SIGMA)
    probe = torch.randn(2, 1, 32, 32)
    A_probe = operator.forward(probe)

    # gen_schedule's grids (DDIMDenoiser on the base diffusion, as DDIMPnP builds it)
    base = gd.create_sampler(adjust_color=False, warm_start=False, **diffusion_config("ddim-pnp"))
    den = gd.DDIMDenoiser(base)
    grid_abp, grid_t, grid_len = [], [], []
    for eta in GRID_ETAS:
        den.gen_schedule(torch.tensor([eta], dtype=torch.float64))
        grid_abp.append(np.asarray(den.alphas_cumprod, np.float64))
        grid_t.append(np.asarray(den._mapping_t, np.int32))
        grid_len.append(len(den.alphas_cumprod))
        assert len(den._mapping_t) == len(den.alphas_cumprod)

    for name, spec in RUNS.items():
        cfg, y, traj, final, draws = run(name, spec, model, gd, cm, operator, noiser, x_true)
        p = spec["params"]
        etas = list(np.concatenate([np.repeat([p["eta_max"]], p["k_start"]),
                                    np.exp(np.linspace(np.log(p["eta_max"]), np.log(p["eta_min"]), p["k"]))]))
        ddim = spec["sampler"] == "ddim-pnp"
        meta = {
            "solver": "dpnp",
            "repository": "github.com/x1xu/diffusion-plug-and-play",
            "commit": commit,
            "called": ["guided_diffusion.gaussian_diffusion.create_sampler -> %s.p_sample_loop"
                       % ("DDIMPnP" if ddim else "DDPMPnP"),
                       "guided_diffusion.gaussian_diffusion.%s.gen_schedule, .denoise"
                       % ("DDIMDenoiser" if ddim else "DDPMDenoiser"),
                       "guided_diffusion.condition_methods.MALASampling.conditioning ('mala', the PCS)",
                       "guided_diffusion.measurements SuperResolutionOperator.forward (util.resizer.Resizer), "
                       "GaussianNoise (y only)",
                       "guided_diffusion.unet.UNetModel with models/fmnist32-long weights"],
            "settings": {"diffusion": cfg, "params": p, "etas": etas,
                         "conditioning": {"method": "mala", "params": MALA, "pcs_steps": PCS_STEPS},
                         "operator": {"name": "super_resolution", "scale_factor": FACTOR, "in_shape": [1, 1, 32, 32]},
                         "noise": {"name": "gaussian", "sigma": NOISE_SIGMA}, "images": IMAGES,
                         "batch": "one loop call per image (their script's batch 1; MALA's step uses the batch's "
                                  "summed misfit); draws stacked over images"},
            "stubbed": ["tqdm.auto.tqdm (a list with set_postfix)", "matplotlib.pyplot (record=False)",
                        "scipy (imported by util.img_utils, unused)", "torchvision (only `torch` is imported from it)"],
            "patched": ["guided_diffusion.condition_methods.range: range(1000) -> range(%d), MALASampling's "
                        "hard-coded PCS step count" % PCS_STEPS,
                        "DDPMDenoiser.denoise wrapped: the draw w of t = 0 (drawn, never added) is dropped from the record",
                        "DDIMDenoiser/DDPMDenoiser.denoise and measurement_cond_fn wrapped to record their outputs"],
            "ours": "dpnp:dds=%s,eta_max=%g,eta_min=%g,k_start=%d,k=%d,pcs_steps=%d,pcs_scale=%g,sigma=%g,reg=%g,"
                    "likelihood=linear,dds_grid=code,clip_denoised=true on sr-bicubic:factor=%d"
                    % ("ddim" if ddim else "ddpm", p["eta_max"], p["eta_min"], p["k_start"], p["k"], PCS_STEPS,
                       MALA["scale"], MALA["multiplier"], MALA["reg"], FACTOR),
            "trajectory": ("traj_x0[k] = x after outer step k: the DDS output (ddim-pnp: PCS then DDS)"
                           if ddim else
                           "traj_x0[k] = x after outer step k: the PCS output for k < K-1, the last DDS output "
                           "for k = K-1 (ddpm-pnp: DDS, PCS, ..., DDS)") + "; final = the returned sample",
        }
        tensors = {"x_true": x_true, "y": y, "probe": probe, "A_probe": A_probe, "traj_x0": traj, "final": final}
        if ddim:
            meta["grids"] = {"etas": GRID_ETAS, "lengths": grid_len,
                             "about": "DDIMDenoiser.gen_schedule(eta): grid_abp (alphas_cumprod, float32 here) and "
                                      "grid_t (_mapping_t), concatenated over etas"}
            tensors["grid_abp"] = torch.from_numpy(np.concatenate(grid_abp))
            tensors["grid_t"] = torch.from_numpy(np.concatenate(grid_t))
        common.write_fixture(os.path.join(out_root, name), meta, tensors, draws)


if __name__ == "__main__":
    main()
