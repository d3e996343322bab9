"""DPS parity fixture: the authors' loop (DPS2022/diffusion-posterior-sampling) on box inpainting.

Runs, from the authors' repository imported at generation time:
  guided_diffusion.gaussian_diffusion.create_sampler (DDPM, SpacedDiffusion respaced to STEPS),
  its p_sample_loop, guided_diffusion.condition_methods PosteriorSampling ('ps') and
  guided_diffusion.measurements' InpaintingOperator and GaussianNoise,
with their guided_diffusion.unet.UNetModel carrying tweedie's converged prior (models/fmnist32-long,
out_channels = 1, so model_var_type is fixed_small: DPS's own configs use learned_range, which
needs a 2C-channel network).

Their p_sample runs only at batch 1 (`if t != 0` on a [B] tensor), and their script
(sample_condition.py) runs one image at a time, so the loop is called once per image, as the
script does, and each recorded draw is stacked over the images into one [2, ...] draw: our solver
at batch 2 (per-item norms) consumes exactly these.

Not recorded: the measurement noise (drawn before the loop; y is stored) and the draw of
p_sample_loop's `noisy_measurement = q_sample(measurement, t)`, which only the 'mcg'/'projection'
methods read ('ps' ignores it).

    /usr/bin/python3 tests/parity/gen/dps.py --repo /work/.mirror/DPS2022+diffusion-posterior-sampling/repo
"""
import functools
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

STEPS = 10           # timestep_respacing
SCALE = 0.5          # conditioning.params.scale (DPS inpainting configs: 0.5)
NOISE_SIGMA = 0.05   # measurement.noise.sigma (DPS configs)
IMAGES = [0, 1]      # Fashion-MNIST test indices
BOX = dict(top=9, left=7, h=16, w=16)  # the removed box (DPS: 128x128 of 256x256 at a random corner)


def stub_imports():
    """Modules their import chain names but this code path never uses."""
    # tqdm.auto.tqdm: p_sample_loop's progress bar (iterates and takes set_postfix)
    class _Bar:
        def __init__(self, it):
            self.it = it

        def __iter__(self):
            return iter(self.it)

        def set_postfix(self, *a, **k):
            pass

    common.stub_module("tqdm.auto", tqdm=_Bar)
    # measurements.py: `from torchvision import torch`, and the motion-blur kernel (external repo)
    common.stub_module("torchvision", torch=torch)
    common.stub_module("motionblur.motionblur", Kernel=None)


def build(steps, scale, noise_sigma, operator, **operator_args):
    """Their pieces as sample_condition.py builds them (imports stubbed first): the UNetModel with
    the converged prior, the DDPM sampler respaced to `steps`, the operator `operator` (their
    registry name) with `operator_args`, the Gaussian noiser and the 'ps' conditioning of step
    `scale`. Returns (model, sampler, operator, noiser, cond_method, diffusion_config)."""
    stub_imports()
    from guided_diffusion import unet as their_unet
    from guided_diffusion.condition_methods import get_conditioning_method
    from guided_diffusion.gaussian_diffusion import create_sampler
    from guided_diffusion.measurements import get_noise, get_operator

    model = common.load_unet(their_unet)
    # as in their script (create_model, eval): parameters keep requires_grad, which their
    # AttentionBlock's always-on gradient checkpoint needs in the backward pass
    for p in model.parameters():
        p.requires_grad_(True)
    diffusion_config = dict(sampler="ddpm", steps=1000, noise_schedule="linear", model_mean_type="epsilon",
                            model_var_type="fixed_small", dynamic_threshold=False, clip_denoised=True,
                            rescale_timesteps=False, timestep_respacing=str(steps))
    sampler = create_sampler(**diffusion_config)
    op = get_operator(name=operator, device="cpu", **operator_args)
    noiser = get_noise(name="gaussian", sigma=noise_sigma)
    cond_method = get_conditioning_method("ps", op, noiser, scale=scale)
    return model, sampler, op, noiser, cond_method, diffusion_config


def main():
    args, tree, commit = common.begin(common.parser(__doc__.splitlines()[0], "dps"))
    model, sampler, operator, noiser, cond_method, diffusion_config = build(STEPS, SCALE, NOISE_SIGMA, "inpainting")

    x_true = common.fmnist_images(IMAGES)
    mask = common.box_mask(BOX, (1, 1, 32, 32))

    # The operator as theirs: A x = mask ⊙ x (full image), on a probe, for the test to compare.
    probe = torch.randn(2, 1, 32, 32)
    A_probe = operator.forward(probe, mask=mask)

    def run_one(b, ref_img):
        # sample_condition.py, per image: y = A x, y_n = noiser(y), x_start ~ N(0, I), loop
        y = operator.forward(ref_img, mask=mask)
        y_n = noiser(y)
        traj = []

        def cond_fn(x_t, measurement, noisy_measurement, x_prev, x_0_hat):
            traj.append(x_0_hat.detach().clone())
            return cond_method.conditioning(x_t=x_t, measurement=measurement, noisy_measurement=noisy_measurement,
                                            x_prev=x_prev, x_0_hat=x_0_hat, mask=mask)

        with common.DrawRecorder() as rec:
            q_sample = sampler.q_sample

            def q_sample_unrecorded(x_start, t):  # its draw feeds only mcg/projection
                out = q_sample(x_start, t)
                rec.draws.pop()
                return out

            sampler.q_sample = q_sample_unrecorded
            x_start = torch.randn(ref_img.shape).requires_grad_()
            sample = sampler.p_sample_loop(model=model, x_start=x_start, measurement=y_n, measurement_cond_fn=cond_fn,
                                           record=False, save_root=None)
            del sampler.q_sample
        return y_n, traj, sample, rec.draws

    # one [B, ...] draw per recorded draw: image b's draw i is item b of draw i
    y, traj_x0, final, draws = common.per_image(x_true, run_one)  # traj_x0 [S, B, 1, 32, 32]
    assert len(draws) == STEPS + 1, f"expected x_T and one draw per step, got {len(draws)}"

    meta = {
        "solver": "dps",
        "repository": "github.com/DPS2022/diffusion-posterior-sampling",
        "commit": commit,
        "called": ["guided_diffusion.gaussian_diffusion.create_sampler -> DDPM (SpacedDiffusion).p_sample_loop",
                   "guided_diffusion.condition_methods.PosteriorSampling.conditioning ('ps')",
                   "guided_diffusion.measurements InpaintingOperator.forward, GaussianNoise (y only)",
                   "guided_diffusion.unet.UNetModel with models/fmnist32-long weights"],
        "settings": {"diffusion": diffusion_config, "conditioning": {"method": "ps", "scale": SCALE},
                     "operator": {"name": "inpainting", "box": BOX, "image": [1, 32, 32]},
                     "noise": {"name": "gaussian", "sigma": NOISE_SIGMA}, "images": IMAGES,
                     "batch": "one loop call per image (their p_sample needs batch 1); draws stacked over images"},
        "stubbed": ["tqdm.auto.tqdm (a plain iterator with set_postfix)", "torchvision (only `torch` is imported from it)",
                    "motionblur.motionblur.Kernel (external repository, motion blur only)"],
        "patched": ["sampler.q_sample wrapped so that its draw (noisy_measurement, unused by 'ps') is not recorded",
                    "measurement_cond_fn wrapped to record x_0_hat (pred_xstart) per step, then calls PosteriorSampling"],
        "ours": "dps:steps=%d,zeta=%g,clip_denoised=true,likelihood=channel on a Gaussian channel (sigma %g) "
                "with the dense operator diag(mask) (their A: mask ⊙ x, full image)" % (STEPS, SCALE, NOISE_SIGMA),
        "trajectory": "traj_x0[s] = x_0_hat (clipped pred_xstart) at step s, s = 0 .. STEPS-1; final = the returned sample",
    }
    common.write_fixture(args.out, meta,
                         {"x_true": x_true, "mask": mask, "y": y, "probe": probe, "A_probe": A_probe,
                          "traj_x0": traj_x0, "final": final},
                         draws)


if __name__ == "__main__":
    main()
