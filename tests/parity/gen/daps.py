"""DAPS parity fixture: the authors' loop (zhangbingliang2019/DAPS) on box inpainting.

Runs, from the authors' repository imported at generation time:
  sampler.get_sampler -> DAPS (annealing cores.scheduler EDMScheduler, per level a
  DiffusionPFODE Euler solve on its own EDMScheduler, cores.mcmc.MCMCSampler Langevin with the
  'gaussian' prior solver), DAPS.get_start and DAPS.sample(record=True),
  model.DDPM (their VPPrecond: σ -> network timestep (M − 1)·t_VP(σ), c_in = 1/√(1+σ²)),
  forward_operator Inpainting (loss ‖x ⊙ mask − y‖², its autograd gradient, measure()),
with their model.ddpm.unet.UNetModel carrying tweedie's converged prior (models/fmnist32-long).
The PF-ODE calls torchdiffeq.odeint(method='euler'); torchdiffeq is not a Debian package, so it is
imported from a snapshot of its repository (--torchdiffeq, rtqichen/torchdiffeq).

Not recorded: the measurement noise (operator.measure, drawn before the loop; y is stored).

    /usr/bin/python3 tests/parity/gen/daps.py --repo /work/.mirror/zhangbingliang2019+DAPS/repo \\
        --torchdiffeq /work/.mirror/rtqichen+torchdiffeq/repo
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

ANNEALING = dict(name="edm", num_steps=4, sigma_max=100, sigma_min=0.1, timestep="poly-7")  # edm_daps.yaml but N
ODE = dict(name="edm", num_steps=2, sigma_min=0.01, timestep="poly-7")                     # edm_daps.yaml but steps
MCMC = dict(num_steps=2, lr=5e-5, tau=0.01, lr_min_ratio=0.01, mc_algo="langevin", prior_solver="gaussian")
# MCMC: task/inpainting.yaml `pixel` (box inpainting) but num_steps (100 there)
NOISE_SIGMA = 0.05   # operator sigma (DAPS configs)
IMAGES = [0, 1]      # Fashion-MNIST test indices
BOX = dict(top=9, left=7, h=16, w=16)


def stub_imports():
    """Modules their import chain names but this code path never uses."""
    common.stub_module("tqdm", trange=None, tqdm=None)  # progress bars, used only with verbose=True
    # model/__init__.py: Stable Diffusion models only
    common.stub_module("diffusers", StableDiffusionPipeline=None)


def main():
    p = common.parser(__doc__.splitlines()[0], "daps")
    p.add_argument("--torchdiffeq", required=True, help="snapshot of rtqichen/torchdiffeq (its odeint)")
    args, tree, commit = common.begin(p)
    tde_tree, tde_commit = common.work_tree(args.torchdiffeq)
    sys.path.insert(1, tde_tree)  # after theirs
    stub_imports()
    import model as their_model
    from forward_operator import get_operator
    from model.ddpm import unet as their_unet
    from sampler import get_sampler

    # their DDPM wrapper (VPPrecond) around our network: create_model is replaced by one that
    # returns guided-diffusion's UNetModel with the converged prior's weights
    unet = common.load_unet(their_unet)
    their_model.create_model = lambda **kw: unet
    model = their_model.DDPM(model_config={"learn_sigma": False, "class_cond": False, "image_size": 32}, device="cpu")
    model.get_in_shape = lambda: (1, 32, 32)  # theirs says (3, size, size): RGB checkpoints

    operator = get_operator(name="inpainting", mask_type="box", mask_len_range=[BOX["h"], BOX["h"] + 1], resolution=32,
                            device="cpu", sigma=NOISE_SIGMA)
    mask = common.box_mask(BOX, (1, 1, 32, 32))
    operator.mask = mask  # a fixed box instead of their np.random corner (margin 32 of 256)

    x_true = common.fmnist_images(IMAGES)
    y = operator.measure(x_true)  # x ⊙ mask + σ n (noise over the whole image)
    probe = torch.randn(2, 1, 32, 32)
    A_probe = operator(probe)
    grad_probe = operator.gradient(probe, y)  # ∇ Σ_b ‖A x_b − y_b‖²

    sampler = get_sampler(latent=False, annealing_scheduler_config=dict(ANNEALING),
                          diffusion_scheduler_config=dict(ODE), mcmc_sampler_config=dict(MCMC))
    with common.DrawRecorder() as rec:
        x_start = sampler.get_start(len(IMAGES), model)
        sample = sampler.sample(model, x_start, operator, y, evaluator=None, record=True, verbose=False)
    traj = sampler.trajectory.compile()
    N = ANNEALING["num_steps"]
    assert len(rec.draws) == 1 + N * (MCMC["num_steps"] + 1), len(rec.draws)

    # the network timestep their wrapper feeds for a few σ (the test compares ours)
    sig_probe = torch.tensor([100.0, 25.0, 1.0, 0.1, 0.01])
    t_probe = (model.model.M - 1) * model.model.sigma_inv(sig_probe)

    meta = {
        "solver": "daps",
        "repository": "github.com/zhangbingliang2019/DAPS",
        "commit": commit,
        "torchdiffeq": {"repository": "github.com/rtqichen/torchdiffeq", "commit": tde_commit},
        "called": ["sampler.get_sampler -> DAPS.get_start, DAPS.sample(record=True)",
                   "cores.scheduler EDMScheduler, DiffusionPFODE(solver='euler') -> torchdiffeq.odeint",
                   "cores.mcmc.MCMCSampler (langevin, prior_solver gaussian)",
                   "model.DDPM / model.precond.VPPrecond around guided-diffusion's UNetModel (their model/ddpm/unet.py)",
                   "forward_operator Inpainting: measure, loss, gradient"],
        "settings": {"annealing_scheduler_config": ANNEALING, "diffusion_scheduler_config": ODE,
                     "mcmc_sampler_config": MCMC, "operator": {"name": "inpainting", "box": BOX, "sigma": NOISE_SIGMA},
                     "images": IMAGES, "batch": len(IMAGES)},
        "stubbed": ["tqdm (progress bars; verbose=False)", "diffusers (Stable Diffusion models only)"],
        "patched": ["model.create_model returns the converged prior's UNetModel (theirs builds an RGB ADM from a config)",
                    "DDPM.get_in_shape -> (1, 32, 32)",
                    "operator.mask set to a fixed box (theirs draws the corner with np.random)"],
        "ours": "daps:annealing_steps=%d,ode_steps=%d,langevin_steps=%d,lr=%g,lr_min_ratio=%g,sigma_max=%g,sigma_min=%g,"
                "ode_sigma_min=%g,rho=7,clip_denoised=false,sigma_map=vp,likelihood=linear,sigma=tau/sqrt(2) on "
                "box-mask (the squared loss's gradient ignores the noise in the removed box)"
                % (N, ODE["num_steps"], MCMC["num_steps"], MCMC["lr"], MCMC["lr_min_ratio"], ANNEALING["sigma_max"],
                   ANNEALING["sigma_min"], ODE["sigma_min"]),
        "trajectory": "traj_x0y[k] = x0 after the Langevin steps of level k (their trajectory's x0y); "
                      "final = the returned x_t",
    }
    common.write_fixture(args.out, meta,
                         {"x_true": x_true, "mask": mask, "y": y, "probe": probe, "A_probe": A_probe,
                          "grad_probe": grad_probe, "sigma_probe": sig_probe, "t_probe": t_probe,
                          "traj_x0y": traj.tensor_data["x0y"],
                          "final": sample.detach()},
                         rec.draws)


if __name__ == "__main__":
    main()
