"""DDNM+ parity fixtures: the authors' loops (wyhuai/DDNM) on box inpainting, both paths.

Runs, from the authors' repository imported at generation time, with their
guided_diffusion.unet.UNetModel carrying tweedie's converged prior (models/fmnist32-long;
out_channels = 1, so `et` is ε itself), without time travel (travel_length = travel_repeat = 1:
get_schedule_jump gives T_sampling-1, ..., 0, -1):

  ddnm      guided_diffusion/diffusion.py Diffusion.simplified_ddnm_plus (the README's "DDNM+ for
            any linear degradation"), deg = 'inpainting': A z = z ⊙ mask, A⁺ = A, with their
            whole per-image pipeline (DataLoader, y = A(x), x_T ~ N(0, I), the loop). Their method
            requires batch size 1, so it runs one image per loop, as their script does; each
            recorded draw is stacked over the two images into one [2, ...] draw (our batch of two
            is the same computation per item). Their y here is noiseless (the method adds no
            noise); sigma_y = 0.05 still enters λ and γ.
  ddnm-svd  functions/svd_ddnm.py ddnm_plus_diffusion (sigma_y > 0: DDNM+) with
            functions/svd_operators.py Inpainting (1 channel, the box as missing set, increasing).
            Their svd_based_ddnm_plus builds its Inpainting for RGB only (missing*3 + 0/1/2), so
            the operator is built here and the method's y step is repeated: y = A(x) + sigma_y n
            (its add_noise branch; that draw is not recorded, y is stored). Both images in one batch.

sigma_y is the [-1, 1]-scale value (their method doubles args.sigma_y: 0.025 there).
Per-step x0_t are read from their loop's own `x0_preds` list (the functions return only the last):
the stubbed tqdm picks up the calling frame's list when the loop starts.

    /usr/bin/python3 tests/parity/gen/ddnm.py --repo /work/.mirror/wyhuai+DDNM/repo
"""
import os
import sys
import tempfile
import types

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

STEPS = 10        # time_travel.T_sampling
ETA = 0.85        # --eta
SIGMA_Y = 0.05    # sigma_y after their doubling of --sigma_y 0.025
IMAGES = [0, 1]   # Fashion-MNIST test indices
SEED = 1234       # --seed (their DataLoader's shuffle generator)
BOX = dict(top=10, left=6, h=12, w=20)  # the masked-out box

LOOPS = []  # (x0_preds, xs, y) of each of their sampling loops, as they fill them


class _Bar:
    """tqdm stand-in: iterates; when created by a sampling loop, keeps that frame's x0_preds, xs, y."""

    def __init__(self, it=None, *a, **k):
        self.it = it
        f = sys._getframe(1)
        if "x0_preds" in f.f_locals and "xs" in f.f_locals:
            LOOPS.append((f.f_locals["x0_preds"], f.f_locals["xs"], f.f_locals.get("y")))

    def __iter__(self):
        return iter(self.it)

    def set_description(self, *a, **k):
        pass


def stub_imports():
    """Modules their import chain names but these code paths never use (or use for files only)."""
    common.stub_module("tqdm", tqdm=_Bar)
    common.stub_module("torchvision.utils", save_image=lambda *a, **k: None)  # writes PNGs
    common.stub_modules("cv2")  # svd_operators: other operators only
    # datasets/ needs torchvision; replaced by our two images
    common.stub_module("datasets", get_dataset=None, data_transform=None, inverse_data_transform=None)


def ns(**k):
    return types.SimpleNamespace(**k)


def config():
    return ns(sampling=ns(batch_size=1), data=ns(num_workers=0, channels=1, image_size=32),
              diffusion=ns(num_diffusion_timesteps=1000),
              time_travel=ns(T_sampling=STEPS, travel_length=1, travel_repeat=1))


def meta_common(commit, called, ours):
    return {
        "solver": "ddnm",
        "repository": "github.com/wyhuai/DDNM",
        "commit": commit,
        "called": called + ["guided_diffusion.unet.UNetModel with models/fmnist32-long weights"],
        "settings": {"T_sampling": STEPS, "travel_length": 1, "travel_repeat": 1, "eta": ETA, "sigma_y": SIGMA_Y,
                     "betas": "linear 1e-4..0.02, 1000 steps, float32 (as their Diffusion)",
                     "operator": {"name": "inpainting", "box": BOX, "image": [1, 32, 32]}, "images": IMAGES},
        "stubbed": ["tqdm.tqdm (an iterator that keeps the sampling loop's x0_preds/xs lists)",
                    "torchvision.utils.save_image (no files)", "cv2 (unused operators)",
                    "datasets (needs torchvision)"],
        "ours": ours,
        "trajectory": "traj_x0[s] = their x0_preds[s] (x0_t of Eq. 12, no clip) at step s; final = xs[-1]",
    }


def simplified(model, x_true, commit, out):
    import guided_diffusion.diffusion as gdd
    mask = common.box_mask(BOX)
    seen = []  # x_orig of each loop, in their DataLoader's (shuffled) order

    def data_transform(cfg, X):  # our images are already in [-1, 1]
        seen.append(X.clone())
        return X

    gdd.get_dataset = lambda a, c: (None, torch.utils.data.TensorDataset(x_true, torch.zeros(len(x_true))))
    gdd.data_transform = data_transform
    gdd.inverse_data_transform = lambda cfg, X: X
    args = ns(seed=SEED, subset_start=-1, subset_end=-1, deg="inpainting", deg_scale=1, sigma_y=SIGMA_Y / 2,
              eta=ETA, image_folder=None)
    betas = torch.from_numpy(common.linear_betas()).float()
    runner = ns(args=args, config=config(), betas=betas, device="cpu")
    del LOOPS[:]
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp, common.cuda_is_cpu():
        # their mask file (exp/inp_masks/mask.npy, read relative to the working directory)
        os.makedirs(os.path.join(tmp, "exp", "inp_masks"))
        np.save(os.path.join(tmp, "exp", "inp_masks", "mask.npy"), mask.numpy())
        args.image_folder = tmp
        os.chdir(tmp)
        try:
            with common.DrawRecorder() as rec:
                gdd.Diffusion.simplified_ddnm_plus(runner, model, None)
        finally:
            os.chdir(cwd)
    assert len(LOOPS) == 2 and len(seen) == 2
    per_image = [rec.draws[:1 + STEPS], rec.draws[1 + STEPS:]]
    assert len(rec.draws) == 2 * (1 + STEPS), len(rec.draws)
    x_seen = torch.cat(seen, 0)
    order = [int(min(range(len(x_true)), key=lambda j: (x_true[j] - x_seen[i]).abs().max())) for i in range(2)]
    meta = meta_common(commit, ["guided_diffusion/diffusion.py Diffusion.simplified_ddnm_plus (unbound, on a namespace "
                                "with args, config, betas, device), deg = 'inpainting'"],
                       "ddnm:steps=%d,eta=%g,sigma=%g,path=simplified" % (STEPS, ETA, SIGMA_Y))
    meta["settings"]["seed"] = SEED
    meta["settings"]["batch"] = "batch size 1 (their method requires it): one loop per image; draws stacked over images"
    meta["settings"]["image_order"] = [IMAGES[j] for j in order]
    meta["patched"] = ["module globals get_dataset (our two images as a TensorDataset), data_transform (identity: "
                       "images already in [-1, 1]; records the order), inverse_data_transform (identity)",
                       "exp/inp_masks/mask.npy: our box mask (32x32), in a temporary working directory",
                       "torch.Tensor.to maps 'cuda' to 'cpu' during the run (their `xs[-1].to('cuda')`)"]
    meta["not_recorded"] = "nothing: their y is noiseless A(x) = x ⊙ mask (image-shaped, stored as their loop had it)"
    tensors = {"x_true": x_seen, "mask": mask, "y": torch.cat([y for _, _, y in LOOPS], 0),
               "traj_x0": torch.cat([torch.stack(p) for p, _, _ in LOOPS], 1),
               "final": torch.cat([xs[-1] for _, xs, _ in LOOPS], 0)}
    common.write_fixture(out, meta, tensors, common.stack_draws(per_image))


def svd_path(model, x_true, commit, out):
    from functions.svd_ddnm import ddnm_plus_diffusion
    from functions.svd_operators import Inpainting
    mask = common.box_mask(BOX)
    missing = torch.nonzero(mask.flatten() == 0).flatten().long()
    A_funcs = Inpainting(1, 32, missing, "cpu")
    # svd_based_ddnm_plus: y = A(x); add_noise: y + sigma_y n (get_gaussian_noisy_img); x ~ N(0, I)
    y = A_funcs.A(x_true)
    y = y + torch.randn_like(y) * SIGMA_Y
    betas = torch.from_numpy(common.linear_betas()).float()
    del LOOPS[:]
    with common.DrawRecorder() as rec, common.cuda_is_cpu():
        x = torch.randn(x_true.shape)
        ddnm_plus_diffusion(x, model, betas, ETA, A_funcs, y, SIGMA_Y, cls_fn=None, classes=None, config=config())
    assert len(LOOPS) == 1 and len(rec.draws) == 1 + STEPS, len(rec.draws)
    x0_preds, xs, _ = LOOPS[0]
    meta = meta_common(commit, ["functions/svd_ddnm.py ddnm_plus_diffusion",
                                "functions/svd_operators.py Inpainting(channels=1, img_dim=32, missing_indices=the box)"],
                       "ddnm:steps=%d,eta=%g,sigma=%g,path=svd,draws=authors" % (STEPS, ETA, SIGMA_Y))
    meta["settings"]["batch"] = len(IMAGES)
    meta["patched"] = ["torch.Tensor.to / .cuda map 'cuda' to 'cpu' during the loop"]
    meta["not_recorded"] = "the measurement noise of y (drawn before the loop; y is stored)"
    probe = torch.randn(1, 1, 32, 32)
    tensors = {"x_true": x_true, "mask": mask, "y": y, "probe": probe, "A_probe": A_funcs.A(probe),
               "Vt_probe": A_funcs.Vt(probe), "traj_x0": torch.stack(x0_preds), "final": xs[-1]}
    common.write_fixture(out, meta, tensors, rec.draws)


def main():
    args, tree, commit = common.begin(common.parser(__doc__.splitlines()[0], "ddnm"))
    stub_imports()
    from guided_diffusion import unet as their_unet

    model = common.load_unet(their_unet)
    x_true = common.fmnist_images(IMAGES)
    simplified(model, x_true, commit, args.out)
    svd_path(model, x_true, commit, args.out.rstrip("/") + "-svd")


if __name__ == "__main__":
    main()
