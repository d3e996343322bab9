"""DDRM parity fixtures: the authors' loop (bahjat-kawar/ddrm) on box inpainting and 2x SR.

Runs, from the authors' repository imported at generation time:
  runners/diffusion.py Diffusion.sample_image (the uniform skip seq = range(0, T, T // timesteps))
  -> functions/denoising.py efficient_generalized_steps (etaA = etaC = eta, etaB),
  with functions/svd_replacement.py Inpainting (a fixed missing set: a box) or SuperResolution
  (ratio 2, block average), and their guided_diffusion.unet.UNetModel carrying tweedie's converged
  prior (models/fmnist32-long; out_channels = 1, so `et` is ε itself).
Both images run in one call (their loop is batched), as their runner does.

Two fixtures:
  <out>     (default tests/fixtures/parity/ddrm):    Inpainting, a 16x16 box removed
  <out>-sr  (default tests/fixtures/parity/ddrm-sr): SuperResolution, ratio 2 (our sr-avg:factor=2)

y_0 = H(x) + sigma_0 n as in their sample_sequence (that draw is not recorded; y is stored).
sigma_0 is passed as the [-1, 1]-scale value (their CLI doubles --sigma_0: 0.025 there).

    /usr/bin/python3 tests/parity/gen/ddrm.py --repo /work/.mirror/bahjat-kawar+ddrm/repo
"""
import os
import sys
import types

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

STEPS = 8         # --timesteps (8: keeps the inpainting fixture near 200 KiB)
ETA = 0.85        # --eta (etaA = etaC)
ETA_B = 1.0       # --etaB
SIGMA_0 = 0.05    # sigma_0 after their runner's doubling of --sigma_0 0.025
IMAGES = [0, 1]   # Fashion-MNIST test indices
BOX = dict(top=8, left=9, h=16, w=16)  # the missing set of the inpainting fixture
SR_RATIO = 2


def stub_imports():
    """Modules their import chain names but this code path never uses."""
    common.stub_module("tqdm", tqdm=lambda it, *a, **k: it)  # progress bars only
    common.stub_modules("torchvision.utils")  # save_image only (runner's sample_sequence)
    # datasets/ needs torchvision; the runner's sample_sequence only
    common.stub_module("datasets", get_dataset=None, data_transform=None, inverse_data_transform=None)


def run_case(Diffusion, model, H_funcs, x_true, commit, out, case, operator_meta, extra_tensors):
    betas = torch.from_numpy(common.linear_betas()).float()  # as their runner: float32 betas
    runner = types.SimpleNamespace(num_timesteps=1000, betas=betas,
                                   args=types.SimpleNamespace(timesteps=STEPS, eta=ETA, etaB=ETA_B))
    # sample_sequence: y_0 = H(x) + sigma_0 n (not recorded), then x ~ N(0, I), then sample_image
    y_0 = H_funcs.H(x_true)
    y_0 = y_0 + SIGMA_0 * torch.randn_like(y_0)
    with common.DrawRecorder() as rec, common.cuda_is_cpu():
        x = torch.randn(x_true.shape)
        xs, x0_preds = Diffusion.sample_image(runner, x, model, H_funcs, y_0, SIGMA_0, last=False)
    assert len(x0_preds) == STEPS
    draws = rec.draws
    # x_T, then per step: the missing-coordinate draw [B, N], the "after" draw [B, #after] (possibly
    # empty), the "before" draw [B, M]
    assert len(draws) == 1 + 3 * STEPS, len(draws)

    probe = torch.randn(1, 1, 32, 32)
    meta = {
        "solver": "ddrm",
        "repository": "github.com/bahjat-kawar/ddrm",
        "commit": commit,
        "called": ["runners/diffusion.py Diffusion.sample_image (unbound, on a namespace with num_timesteps, "
                   "betas, args.timesteps/eta/etaB) -> functions/denoising.py efficient_generalized_steps",
                   "functions/svd_replacement.py " + operator_meta["class"],
                   "guided_diffusion.unet.UNetModel with models/fmnist32-long weights"],
        "settings": {"timesteps": STEPS, "eta": ETA, "etaA": ETA, "etaC": ETA, "etaB": ETA_B, "sigma_0": SIGMA_0,
                     "betas": "linear 1e-4..0.02, 1000 steps, float32 (as their runner)",
                     "operator": operator_meta, "images": IMAGES, "batch": len(IMAGES)},
        "stubbed": ["tqdm.tqdm (identity)", "torchvision, torchvision.utils (save_image, unused here)",
                    "datasets (needs torchvision; get_dataset/data_transform are used only by sample_sequence)"],
        "patched": ["torch.Tensor.to maps 'cuda' to 'cpu' during the loop (their `xs[-1].to('cuda')`)"],
        "not_recorded": "the measurement noise of y_0 (drawn before the loop, as their sample_sequence does)",
        "ours": "ddrm:steps=%d,eta=%g,eta_b=%g,sigma=%g,draws=authors" % (STEPS, ETA, ETA_B, SIGMA_0),
        "trajectory": "traj_x0[s] = x0_preds[s] (x0_t, no clip) at step s; final = xs[-1]",
    }
    tensors = {"y": y_0, "probe": probe, "H_probe": H_funcs.H(probe), "Vt_probe": H_funcs.Vt(probe),
               "singulars": H_funcs.singulars(), "traj_x0": torch.stack(x0_preds), "final": xs[-1]}
    tensors.update(extra_tensors)
    common.write_fixture(out, meta, tensors, draws)


def main():
    args, tree, commit = common.begin(common.parser(__doc__.splitlines()[0], "ddrm"))
    stub_imports()
    from functions.svd_replacement import Inpainting, SuperResolution
    from guided_diffusion import unet as their_unet
    from runners.diffusion import Diffusion

    model = common.load_unet(their_unet)
    x_true = common.fmnist_images(IMAGES)

    # Inpainting: the missing set is the box, in increasing index order (C = 1: index = pixel)
    mask = common.box_mask(BOX)
    missing = torch.nonzero(mask.flatten() == 0).flatten().long()
    run_case(Diffusion, model, Inpainting(1, 32, missing, "cpu"), x_true, commit, args.out, "inpainting",
             {"class": "Inpainting(channels=1, img_dim=32, missing_indices=the box, increasing)", "box": BOX,
              "image": [1, 32, 32], "ours": "box-mask:h=%(h)d,w=%(w)d,top=%(top)d,left=%(left)d" % BOX},
             {"mask": mask})

    sr = SuperResolution(1, 32, SR_RATIO, "cpu")
    run_case(Diffusion, model, sr, x_true, commit, args.out.rstrip("/") + "-sr", "sr",
             {"class": "SuperResolution(channels=1, img_dim=32, ratio=%d)" % SR_RATIO, "ratio": SR_RATIO,
              "image": [1, 32, 32], "ours": "sr-avg:factor=%d, run with their SVD basis (V_small, U_small) as its "
              "SVD view: the degenerate subspaces' bases differ and the noise enters as V z" % SR_RATIO},
             {"V_small": sr.V_small, "U_small": sr.U_small})


if __name__ == "__main__":
    main()
