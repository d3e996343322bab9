"""Parity fixture for RED-diff (tests/parity/red_diff_parity_test.cpp): the authors' own sampler,
NVlabs/RED-diff algos/reddiff.py REDDIFF.sample, on the shipped converged prior and box
inpainting of two Fashion-MNIST images.

Their objects are built as their main.py builds them, with their own classes: Diffusion(linear,
1000) (models/diffusion.py), ClassifierGuidanceModel (no classifier) around guided-diffusion's
UNetModel from their copy (models/guided_diffusion/unet.py) with our weights, the degradation
from build_degredation_model(cfg) for deg "inp_box" (their Inpainting class, whose mask file is
written with their save_mask), timesteps from their get_timesteps(cfg), y_0 = H.H(x). The config
is the shipped _configs/algo/reddiff.yaml with exp.num_steps = 10. What is patched (meta.json):
  * the packages `algos` and `models` are registered without running their __init__.py (which
    import every algorithm and hydra's model builder), so algos.reddiff and the model modules
    are imported directly; omegaconf (type hints only) and hydra are stubbed;
  * Tensor.cuda is the identity while Diffusion is built (it moves its tables to the GPU), and
    the Inpainting operator's device is set to the CPU;
  * torch.optim.Adam is a subclass that records μ after each step (the trajectory).
Every torch draw is recorded; the noise_x0 draw of each step is left out of the fixture: it is
multiplied by sigma_x0 = 0. main.py's y_0 noise (times sigma_y = 0) is not drawn.
"""
import os
import sys
import tempfile
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

NUM_STEPS = 10
IMAGES = [0, 1]
BOX = dict(h=12, w=12, top=10, left=10)


def load_yaml(path):
    import yaml
    with open(path) as f:
        return yaml.safe_load(f)


def ns(d):
    return types.SimpleNamespace(**{k: ns(v) if isinstance(v, dict) else v for k, v in d.items()})


def build(repo, num_steps, pixel_mask, indices):
    """Their REDDIFF sampler as their main.py builds it, for inpainting with `pixel_mask` ([H, W],
    1 = kept; deg inp_box) and `num_steps` steps: returns (sampler, H, ts, cfg, algo, exp, diff_cfg).
    Registers the packages and stubs that their imports need (the module docstring says which)."""
    common.stub_module("omegaconf", DictConfig=dict, OmegaConf=None)
    common.stub_module("hydra.utils", call=None)
    for pkg in ["algos", "models"]:  # packages without their registries (__init__.py)
        if pkg not in sys.modules:
            m = types.ModuleType(pkg)
            m.__path__ = [os.path.join(repo, pkg)]
            sys.modules[pkg] = m

    from algos.reddiff import REDDIFF
    from models.classifier_guidance_model import ClassifierGuidanceModel
    from models.diffusion import Diffusion
    from models.guided_diffusion import unet
    from utils import degredations
    from utils.functions import get_timesteps

    # --- config: their yaml files, num_steps changed --------------------------------------------
    algo = load_yaml(os.path.join(repo, "_configs", "algo", "reddiff.yaml"))
    exp = load_yaml(os.path.join(repo, "_configs", "exp", "default.yaml"))
    diff_cfg = load_yaml(os.path.join(repo, "_configs", "diffusion", "linear1000.yaml"))
    scratch = tempfile.mkdtemp(prefix="reddiff-parity-")
    algo["deg"] = "inp_box"
    exp.update(num_steps=num_steps, root=scratch, save_evolution=False)
    cfg = ns({"algo": algo, "exp": exp, "diffusion": diff_cfg, "dataset": {"image_size": 32, "channels": 1}})
    os.makedirs(os.path.join(scratch, "masks"))
    degredations.save_mask(os.path.join(scratch, "masks", "box.npz"), pixel_mask.reshape(1, -1).numpy())
    # --- model and diffusion ----------------------------------------------------------------------
    with common.cuda_is_cpu():
        diffusion = Diffusion(**vars(cfg.diffusion))
    net = common.load_unet(unet)
    cg_model = ClassifierGuidanceModel(net, None, diffusion, cfg)
    sampler = REDDIFF(cg_model, cfg)                         # builds H = build_degredation_model(cfg)
    H = sampler.H                                            # as main.py: H = algo.H; H.set_indices(idx)
    assert isinstance(H, degredations.Inpainting)
    H.device = torch.device("cpu")
    H.set_indices(torch.tensor(indices))
    return sampler, H, get_timesteps(cfg), cfg, algo, exp, diff_cfg


def main():
    args, repo, commit = common.begin(common.parser(__doc__.split("\n")[0], "red-diff"))
    x = common.fmnist_images(IMAGES)                         # [2, 1, 32, 32] in [-1, 1]
    pixel_mask = common.box_mask(BOX)
    sampler, H, ts, cfg, algo, exp, diff_cfg = build(repo, NUM_STEPS, pixel_mask, IMAGES)
    y_0 = H.H(x)                                             # [2, K]: the kept pixels

    traj = []
    RealAdam = torch.optim.Adam

    class RecordingAdam(RealAdam):
        def step(self, closure=None):
            out = super().step(closure)
            traj.append(self.param_groups[0]["params"][0].detach().clone())
            return out

    torch.optim.Adam = RecordingAdam
    src = open(os.path.join(repo, "algos", "reddiff.py")).read().splitlines()

    line_x0 = common.source_line(src, "noise_x0 = torch.randn_like(mu)")
    line_xt = common.source_line(src, "noise_xt = torch.randn_like(mu)")
    try:
        with common.tagged_draws() as rec:
            x0_pred, mu = sampler.sample(x, None, ts, y_0=y_0)
    finally:
        torch.optim.Adam = RealAdam
    kept, left_out = [], 0
    for (name, line), draw in zip(rec.tags, rec.draws):
        assert name == "sample" and line in (line_x0, line_xt), (name, line)
        if line == line_x0:
            left_out += 1
        else:
            kept.append(draw)
    assert cfg.algo.sigma_x0 == 0 and len(traj) == NUM_STEPS

    tensors = {
        "x_true": x,
        "mask": pixel_mask[None],
        "y": y_0,
        "mu0": H.H_pinv(y_0).view(*x.size()),                # their initialisation
        "traj_mu": torch.stack(traj),                        # μ after each Adam step [S, 2, 1, 32, 32]
        "final": x0_pred.detach(),                           # their return value x0_pred (main.py saves it)
    }
    meta = {
        "solver": "red-diff",
        "repository": "NVlabs/RED-diff",
        "commit": commit,
        "entry": "algos/reddiff.py REDDIFF.sample(x, y, ts, y_0=...)",
        "settings": {"algo": algo, "exp": {k: exp[k] for k in ["num_steps", "start_step", "end_step"]},
                     "diffusion": diff_cfg, "ts": list(ts), "batch": len(IMAGES)},
        "images": {"source": "fashion-mnist:test", "indices": IMAGES},
        "mask": {"kind": "box (removed), every image", **BOX},
        "patched": [
            "algos, models: packages registered without running __init__.py (registries importing hydra and every algorithm)",
            "models.guided_diffusion.unet.UNetModel with models/fmnist32-long weights as the ε-network",
            "Tensor.cuda: identity while Diffusion(**cfg.diffusion) is built; Inpainting.device = cpu",
            "torch.optim.Adam: subclass recording μ after each step",
            "mask: written to <exp.root>/masks/box.npz with their save_mask, read by build_degredation_model (deg inp_box)",
        ],
        "stubbed": ["omegaconf (DictConfig type hint)", "hydra, hydra.utils"],
        "draws_left_out": f"{left_out} draws: noise_x0 = randn_like(mu), multiplied by sigma_x0 = 0",
        "trajectory": "traj_mu[s]: mu after the Adam step of iteration s; final: their returned x0_pred = mu + "
                      "sigma_x0 * noise_x0 of the last iteration, formed before its Adam step",
        "ours": "red-diff:steps=10,lr=0.1,lambda=0.125,obs_weight=0.5,weighting=linear,init=pinv,likelihood=linear,"
                "sigma=1,output=x0_pred (λ and v over the batch of 2: the code's means run over the batch)",
    }
    common.write_fixture(args.out, meta, tensors, [(k, t) for k, t in kept])


if __name__ == "__main__":
    main()
