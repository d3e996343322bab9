"""Parity fixture for DiffPIR (tests/parity/diffpir_parity_test.cpp): the authors' own inpainting
script, yuanzhi-zhu/DiffPIR main_ddpir_inpainting.py, executed as it stands (its main() and its
loop), with the shipped converged prior and two Fashion-MNIST images patched in.

The script's loop is script-level code inside main(), so it is executed, not re-written: its
source is compiled with two settings changed (iter_num 20 -> 10, to keep the fixture small;
noise_level_img 0 -> 12.75/255, their deblurring default, so that lambda matters) and
run as __main__ in a scratch directory after these patches (all recorded in meta.json):
  * guided_diffusion.script_util.create_model_and_diffusion -> guided-diffusion's UNetModel (the
    authors' copy) with the converged prior's weights, wrapped so that the two images, which the
    script carries as the two channels of one image (it reads one image at a time, HxWxC), are
    two batch items of the network; and their own create_gaussian_diffusion (linear, 1000 steps)
    with learn_sigma=False (our prior predicts ε only). torch.load returns those weights.
  * utils_image.get_image_paths / imread_uint -> the two test images as one 32x32x2 uint8 image;
    utils_inpaint.mask_generator -> a fixed box mask (their data step is the closed form
    x0' = (M y + rho x0)/(M + rho) for any mask); imsave -> no-op; lpips -> a stub (metrics only).
  * cv2, torchvision (imported by utils_image, used only for file I/O here) are stubbed.
Every torch draw is recorded; two kinds are left out of the fixture because they cannot change
the result: the noise p_sample draws for its x_{t-1} sample (the script keeps only
pred_xstart), and the eta-term draw of the re-noising, multiplied by eta_sigma = 0 (eta = 0).
The per-step x0 after the data step (the Tweedie x0 at the last step) and the final state are
read from the running frame with a line tracer (sys.settrace), not by editing the loop.
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

ITER_NUM = 10
# AWGN on the [0, 1] scale: their deblur/SR default 12.75/255 rather than inpainting's 0, so that
# the data step's weight rho = lambda sigma^2 abar/(1 - abar) and the y-start's t_y are exercised
# (at sigma = max(0.001, 0) rho is ~1e-6 and x0' is y on the kept pixels whatever lambda is)
NOISE_LEVEL_IMG = "12.75/255.0"
IMAGES = [0, 1]                    # Fashion-MNIST test indices
BOX = dict(h=12, w=12, top=10, left=10)  # the removed box (pixels), both images


def main():
    args, repo, commit = common.begin(common.parser(__doc__.split("\n")[0], "diffpir"))

    # --- stubs for imports the code path never uses -------------------------------------------
    common.stub_modules("cv2")
    common.stub_module("torchvision.utils", make_grid=None)

    class LPIPS(torch.nn.Module):  # metrics only: the script logs it
        def __init__(self, net="vgg"):
            super().__init__()

        def forward(self, a, b):
            return torch.zeros(a.shape[0], 1, 1, 1)

    common.stub_module("lpips", LPIPS=LPIPS)

    from guided_diffusion import script_util, unet
    from utils import utils_image, utils_inpaint, utils_model

    # --- the problem --------------------------------------------------------------------------
    truth = common.fmnist_images(IMAGES)                       # [2, 1, 32, 32] in [-1, 1]
    img_uint = np.round((truth[:, 0].numpy() + 1) * 127.5).astype(np.uint8).transpose(1, 2, 0)  # 32x32x2
    assert np.array_equal(img_uint.astype(np.float32) / 127.5 - 1, truth[:, 0].numpy().transpose(1, 2, 0))
    pixel_mask = common.box_mask(BOX)

    class FixedMask:  # stands in for their mask_generator (random masks of 256x256x3 only)
        def __init__(self, *a, **k):
            pass

        def __call__(self, img):
            return pixel_mask.expand(img.shape).clone()

    utils_inpaint.mask_generator = FixedMask
    utils_image.get_image_paths = lambda root: ["fmnist_test_0_1.png"]
    utils_image.imread_uint = lambda path, n_channels=3: img_uint.copy()
    utils_image.imsave = lambda img, path: None

    # --- the network: the converged prior, the two images (channels) as a batch ----------------
    net = common.load_unet(unet)

    class ChannelsAsBatch(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x, timesteps, **kw):
            B, C, H, W = x.shape
            out = self.net(x.reshape(B * C, 1, H, W), timesteps.repeat_interleave(C))
            return out.reshape(B, C, H, W)

    model = ChannelsAsBatch(net).eval()
    diffusions = []

    def create_model_and_diffusion(**kw):
        dkw = {k: kw[k] for k in ["steps", "learn_sigma", "sigma_small", "noise_schedule", "use_kl", "predict_xstart",
                                  "rescale_timesteps", "rescale_learned_sigmas", "timestep_respacing"]
               if k in kw}
        dkw.update(steps=kw.get("diffusion_steps", 1000), learn_sigma=False)
        assert dkw["noise_schedule"] == "linear" and dkw["steps"] == 1000 and dkw["timestep_respacing"] == ""
        d = script_util.create_gaussian_diffusion(**dkw)
        diffusions.append(d)
        return model, d

    script_util.create_model_and_diffusion = create_model_and_diffusion
    real_load = torch.load
    torch.load = lambda *a, **k: model.state_dict()

    # --- the script, one setting changed ------------------------------------------------------
    script = os.path.join(repo, "main_ddpir_inpainting.py")
    src = open(script).read()
    changes = {"    iter_num                = 20 ": f"    iter_num                = {ITER_NUM} ",
               "    noise_level_img         = 0/255.0 ": f"    noise_level_img         = {NOISE_LEVEL_IMG} "}
    for a, b in changes.items():
        assert src.count(a) == 1, a
        src = src.replace(a, b)
    lines = src.splitlines()

    def line_of(text):
        return common.source_line(lines, text)

    after_data_step = line_of("if (model_out_type == 'pred_xstart') and not (seq[i] == seq[-1]):")
    after_loop = line_of("x[mask.to(torch.bool)] = y[mask.to(torch.bool)]")  # before it runs
    renoise_eta = line_of("+ eta_sigma * torch.randn_like(x)) + np.sqrt(zeta) * sqrt_1m_alphas_cumprod[t_im1] * torch.randn_like(x)")
    start_line = line_of("sqrt_alpha_effective**2 * sqrt_1m_alphas_cumprod[t_y]**2) * torch.randn_like(y)")

    traj, steps_t, final, settings = [], [], [], {}

    def local_trace(frame, event, arg):
        if event == "line":
            if frame.f_lineno == after_data_step:
                traj.append(frame.f_locals["x0"].detach().clone())
                steps_t.append(int(frame.f_locals["t_i"]))
                for k in ["lambda_", "zeta", "eta", "sigma", "guidance_scale", "skip_type", "iter_num", "noise_level_img",
                          "t_start", "generate_mode", "model_out_type", "sub_1_analytic", "iter_num_U"]:
                    if k in frame.f_locals and k not in settings:
                        v = frame.f_locals[k]
                        settings[k] = v.item() if hasattr(v, "item") else v
                if "y" in frame.f_locals:
                    settings["_y"] = frame.f_locals["y"].detach().clone()
                    settings["_mask"] = frame.f_locals["mask"].detach().clone()
            elif frame.f_lineno == after_loop:
                final.append(frame.f_locals["x"].detach().clone())
        return local_trace

    def global_trace(frame, event, arg):
        if frame.f_code.co_filename == script and frame.f_code.co_name == "test_rho":
            return local_trace
        return None

    # closure variables (seq, eta, ...) of test_rho are read through f_locals as free variables
    scratch = tempfile.mkdtemp(prefix="diffpir-parity-")
    cwd = os.getcwd()
    os.chdir(scratch)
    try:
        with common.tagged_draws() as rec:
            code = compile(src, script, "exec")
            sys.settrace(global_trace)
            try:
                exec(code, {"__name__": "__main__", "__file__": script})
            finally:
                sys.settrace(None)
    finally:
        os.chdir(cwd)
        torch.load = real_load
    tags = rec.tags

    # --- keep the draws that reach the result -------------------------------------------------
    kept, left_out = [], {"p_sample": 0, "eta_term": 0}
    i = 0
    while i < len(tags):
        name, line = tags[i]
        if name == "p_sample":
            left_out["p_sample"] += 1
        elif name == "test_rho" and line == start_line:
            kept.append(rec.draws[i])
        elif name == "test_rho" and line == renoise_eta:
            # the pair of one re-noising: eta_sigma * z1 (eta_sigma = 0), then sqrt(zeta) ... * z2
            assert i + 1 < len(tags) and tags[i + 1] == (name, line)
            left_out["eta_term"] += 1
            kept.append(rec.draws[i + 1])
            i += 1
        else:
            raise SystemExit(f"unexpected draw from {name}:{line}")
        i += 1
    assert settings["eta"] == 0.0 and len(traj) == ITER_NUM and len(final) == 1
    y_img, mask = settings.pop("_y"), settings.pop("_mask")

    def as_batch(t):  # [1, 2, 32, 32] (images as channels) -> [2, 1, 32, 32]
        return t.reshape(2, 1, 32, 32)

    tensors = {
        "x_true": truth,
        "mask": pixel_mask[None],                              # [1, 32, 32], 1 = kept
        "y_image": as_batch(y_img),                            # their y: kept pixels, -1 elsewhere
        "traj_x0": torch.stack([as_batch(t) for t in traj]),   # [S, 2, 1, 32, 32]
        "final": as_batch(final[0]),                           # the returned state x (x_0 = x/2 + 0.5)
    }
    draws = [(k, t.reshape(2, 1, 32, 32)) for k, t in kept]
    meta = {
        "solver": "diffpir",
        "repository": "yuanzhi-zhu/DiffPIR",
        "commit": commit,
        "entry": "main_ddpir_inpainting.py main() -> test_rho(), run as __main__",
        "source_changes": changes,
        "settings": settings,
        "timesteps": steps_t,
        "images": {"source": "fashion-mnist:test", "indices": IMAGES},
        "mask": {"kind": "box (removed), every image", **BOX},
        "patched": [
            "guided_diffusion.script_util.create_model_and_diffusion: the authors' guided_diffusion UNetModel with "
            "models/fmnist32-long weights, the script's two image channels run as two batch items; their "
            "create_gaussian_diffusion(linear, 1000, learn_sigma=False)",
            "torch.load: returns those weights",
            "utils.utils_image.get_image_paths/imread_uint: Fashion-MNIST test images 0 and 1 as one 32x32x2 uint8 image",
            "utils.utils_image.imsave: no-op",
            "utils.utils_inpaint.mask_generator: the fixed box mask above",
        ],
        "stubbed": ["cv2", "torchvision", "torchvision.utils", "lpips (LPIPS -> zeros; metric only)"],
        "draws_left_out": {
            "p_sample": f"{left_out['p_sample']} draws: the x_(t-1) sample noise inside p_sample, whose 'sample' the script discards (it keeps pred_xstart)",
            "eta_term": f"{left_out['eta_term']} draws: eta_sigma * randn_like(x) with eta = 0",
        },
        "trajectory": "traj_x0[s]: x0 at the line after the data step of loop iteration s (the clipped Tweedie "
                      "pred_xstart at the last iteration, which has no data step); final: x after the loop (their "
                      "output x_0 = x/2 + 0.5, before the known-pixel overwrite, which x_0 does not see)",
        "ours": "diffpir:steps=10,lambda=1,zeta=1,likelihood=linear,sigma=0.1,prox=cg,start=y,output=state",
    }
    common.write_fixture(args.out, meta, tensors, draws)


if __name__ == "__main__":
    main()
