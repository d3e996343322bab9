"""Shared by the parity fixture generators (tests/parity/parity_support.h says what a fixture is).

A generator imports an authors' repository from a snapshot on disk (its path is an argument;
nothing of it is copied into tweedie), builds guided-diffusion's UNetModel with the shipped
converged prior's weights (models/fmnist32-long), runs the authors' own solver loop on a small
problem with every random draw recorded, and writes a fixture directory. Run with Debian's
/usr/bin/python3 (torch 1.13, numpy), one thread:

    python3 tests/parity/gen/<solver>.py --repo /path/to/snapshot [--out tests/fixtures/parity/<name>]
"""
import argparse
import contextlib
import json
import os
import struct
import subprocess
import sys
import types

import numpy as np
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PRIOR_DIR = os.path.join(ROOT, "models", "fmnist32-long")


def parser(description, default_out):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--repo", required=True, help="the authors' repository snapshot (a work tree or a git dir)")
    p.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "parity", default_out))
    return p


def setup():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    np.random.seed(0)


def begin(arg_parser):
    """Every generator's start: parses the arguments, setup() (one thread, seeds 0), extracts the
    authors' repository (--repo) with work_tree and puts it first on sys.path. Returns
    (args, tree, commit)."""
    args = arg_parser.parse_args()
    setup()
    tree, commit = work_tree(args.repo)
    sys.path.insert(0, tree)
    return args, tree, commit


def work_tree(repo, dest=None):
    """A readable work tree of `repo`: the path itself when it has files, else a checkout of the
    git directory's HEAD into `dest` (default /tmp/tweedie-parity/<name>). Returns (path, commit)."""
    if os.path.isdir(os.path.join(repo, ".git")) or not os.path.exists(os.path.join(repo, "HEAD")):
        commit = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        return repo, commit or "unknown"
    commit = subprocess.run(["git", "--git-dir", repo, "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    dest = dest or os.path.join("/tmp/tweedie-parity", os.path.basename(os.path.dirname(os.path.abspath(repo))))
    if not os.path.isdir(dest):
        os.makedirs(dest)
        done = subprocess.run(f"set -o pipefail; git --git-dir {repo} archive HEAD | tar -x -C {dest}", shell=True,
                              executable="/bin/bash")
        if done.returncode != 0:
            # a partial mirror (some blobs, e.g. figures, absent): extract the readable files one by one
            names = subprocess.run(["git", "--git-dir", repo, "ls-tree", "-r", "--name-only", "HEAD"],
                                   capture_output=True, text=True, check=True).stdout.splitlines()
            for name in names:
                blob = subprocess.run(["git", "--git-dir", repo, "show", f"HEAD:{name}"], capture_output=True)
                if blob.returncode == 0:
                    os.makedirs(os.path.dirname(os.path.join(dest, name)) or dest, exist_ok=True)
                    with open(os.path.join(dest, name), "wb") as f:
                        f.write(blob.stdout)
    return dest, commit


def stub_modules(*names):
    """Empty modules for imports the code path never uses (blobfile, mpi4py, lpips, ...)."""
    for n in names:
        stub_module(n)


def stub_module(name, **attrs):
    """A stand-in module `name` carrying `attrs`, for an import the code path never uses (or uses
    only for what `attrs` provide), registered in sys.modules; a dotted name is also made an
    attribute of its parent, which is stubbed first when absent. A module already in sys.modules
    is kept as it is. Returns the module."""
    if name in sys.modules:
        return sys.modules[name]
    m = types.ModuleType(name)
    for k, v in attrs.items():
        setattr(m, k, v)
    parent, _, leaf = name.rpartition(".")
    if parent:
        setattr(stub_module(parent), leaf, m)
    sys.modules[name] = m
    return m


@contextlib.contextmanager
def cuda_is_cpu():
    """Their code moves tensors with `.to('cuda')` / `.cuda()`; on this CPU-only run, while active,
    `.to` maps a CUDA device to the CPU and `.cuda()` is the identity."""
    orig_to, orig_cuda = torch.Tensor.to, torch.Tensor.cuda

    def to(self, *a, **k):
        a = tuple("cpu" if (isinstance(v, str) and v.startswith("cuda")) or
                  (isinstance(v, torch.device) and v.type == "cuda") else v for v in a)
        if "device" in k:
            k["device"] = "cpu"
        return orig_to(self, *a, **k)

    torch.Tensor.to = to
    torch.Tensor.cuda = lambda self, *a, **k: self
    try:
        yield
    finally:
        torch.Tensor.to, torch.Tensor.cuda = orig_to, orig_cuda


def source_line(lines, text):
    """The 1-based number of the one line of `lines` (a source file's lines) whose stripped text is
    `text`; asserts that there is exactly one."""
    hits = [i + 1 for i, l in enumerate(lines) if l.strip() == text]
    assert len(hits) == 1, text
    return hits[0]


def read_safetensors(path):
    """The tensors of a .safetensors file (no safetensors package on Debian): 8-byte header
    length, JSON header, raw little-endian data."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    dtypes = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "F16": np.float16}
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(data[a:b], dtype=dtypes[v["dtype"]]).reshape(v["shape"]).copy())
    return out


def prior_config():
    with open(os.path.join(PRIOR_DIR, "model.json")) as f:
        return json.load(f)


def load_unet(unet_module):
    """guided-diffusion's UNetModel (from the authors' copy, `unet_module`) with the converged
    prior's weights, strict, eval, float32."""
    cfg = prior_config()
    kwargs = dict(cfg)
    kwargs["attention_resolutions"] = tuple(cfg["attention_resolutions"])
    kwargs["channel_mult"] = tuple(cfg["channel_mult"])
    model = unet_module.UNetModel(**kwargs)
    model.load_state_dict(read_safetensors(os.path.join(PRIOR_DIR, "model.safetensors")), strict=True)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def linear_betas(T=1000):
    scale = 1000 / T
    return np.linspace(scale * 0.0001, scale * 0.02, T, dtype=np.float64)


class DrawRecorder:
    """Records every random number torch draws while active, in order (torch.randn, randn_like,
    rand, rand_like, normal, Tensor.normal_/uniform_). The draws are real draws from torch's
    global generator; the recorder only keeps a copy."""

    def __init__(self):
        self.draws = []  # (kind, tensor)
        self._saved = {}

    def _wrap(self, owner, name, kind):
        orig = getattr(owner, name)
        self._saved[(owner, name)] = orig
        rec = self

        def wrapped(*a, **k):
            out = orig(*a, **k)
            rec.draws.append((kind, out.detach().to("cpu", torch.float32).clone()))
            return out

        setattr(owner, name, wrapped)

    def __enter__(self):
        for name, kind in [("randn", "normal"), ("randn_like", "normal"), ("rand", "uniform"), ("rand_like", "uniform")]:
            self._wrap(torch, name, kind)
        self._wrap(torch.Tensor, "normal_", "normal")
        self._wrap(torch.Tensor, "uniform_", "uniform")
        return self

    def __exit__(self, *exc):
        for (owner, name), orig in self._saved.items():
            setattr(owner, name, orig)
        self._saved = {}
        return False


@contextlib.contextmanager
def tagged_draws():
    """A DrawRecorder (yielded) whose torch.randn_like draws also note their caller, (function
    name, line), in rec.tags, so that a generator can tell which draws reach the result. On a
    normal exit, asserts that every draw was such a randn_like (rec.tags[i] is rec.draws[i]'s)."""
    with DrawRecorder() as rec:
        rec.tags = []
        recorded = torch.randn_like

        def tagged(*a, **k):
            f = sys._getframe(1)
            rec.tags.append((f.f_code.co_name, f.f_lineno))
            return recorded(*a, **k)

        torch.randn_like = tagged
        yield rec
    assert len(rec.tags) == len(rec.draws), "a draw other than torch.randn_like was made"


def stack_draws(per_image):
    """One [B, ...] draw per recorded draw from per-image records (per_image[b]: image b's draws,
    (kind, [1, ...]) in order): item b of draw i is image b's draw i. Asserts that every image drew
    the same sequence of kinds."""
    n = len(per_image[0])
    assert all(len(d) == n for d in per_image), "the images drew different numbers of draws"
    out = []
    for i in range(n):
        kinds = {d[i][0] for d in per_image}
        assert len(kinds) == 1
        out.append((kinds.pop(), torch.cat([d[i][1] for d in per_image], 0)))
    return out


def per_image(x_true, run_one):
    """The authors' script runs one image per loop call: calls run_one(b, x_true[b:b + 1]) for each
    image b in turn; it returns (y, traj, final, draws): the measurement, the list of per-step
    tensors, the result and the recorded draws of that call. Returns y, traj [S, B, ...] and final
    concatenated over the images, and the draws stacked over them (stack_draws): what our solver
    consumes at batch B."""
    ys, trajs, finals, draws = [], [], [], []
    for b in range(len(x_true)):
        y, traj, final, d = run_one(b, x_true[b:b + 1])
        ys.append(y.detach())
        trajs.append(torch.stack(traj))
        finals.append(final.detach())
        draws.append(d)
    return torch.cat(ys, 0), torch.cat(trajs, 1), torch.cat(finals, 0), stack_draws(draws)


def write_fixture(out, meta, tensors, draws=()):
    """Writes meta.json, draws.npy and one <name>.npy per tensor (float32 unless integer)."""
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        if f.endswith(".npy") or f == "meta.json":
            os.remove(os.path.join(out, f))
    meta = dict(meta)
    meta["draws"] = [{"kind": k, "shape": list(t.shape)} for k, t in draws]
    meta["tensors"] = {}
    for name, t in tensors.items():
        a = t.detach().cpu().numpy() if torch.is_tensor(t) else np.asarray(t)
        if a.dtype == np.float64:
            a = a.astype(np.float32)
        np.save(os.path.join(out, name + ".npy"), np.ascontiguousarray(a))
        meta["tensors"][name] = list(a.shape)
    flat = np.concatenate([t.numpy().ravel() for _, t in draws]) if draws else np.zeros(0, np.float32)
    np.save(os.path.join(out, "draws.npy"), flat.astype(np.float32))
    meta["environment"] = {"torch": torch.__version__, "numpy": np.__version__,
                           "python": sys.version.split()[0], "threads": torch.get_num_threads()}
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print(f"wrote {out}: {len(tensors)} tensors, {len(draws)} draws, {size / 1024:.0f} KiB")


def fmnist_images(indices, size=32):
    """Fashion-MNIST test images (Debian's dataset-fashion-mnist) padded to 32x32 in [-1, 1], as
    tweedie's `fashion-mnist:test:i` source gives them: [B, 1, 32, 32]."""
    import gzip
    for d in ["/usr/share/dataset-fashion-mnist", "/usr/share/datasets/fashion-mnist"]:
        p = os.path.join(d, "t10k-images-idx3-ubyte.gz")
        if os.path.exists(p):
            break
    else:
        raise SystemExit("Fashion-MNIST not found (apt-get install dataset-fashion-mnist)")
    with gzip.open(p, "rb") as f:
        raw = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    x = raw[list(indices)].astype(np.float32) / 127.5 - 1
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)), constant_values=-1)
    return torch.from_numpy(x[:, None].copy())


def box_mask(box, shape=(32, 32)):
    """Ones of `shape` with the box `box` (top, left, h, w: the removed pixels) set to 0 in the last
    two dimensions: 1 = kept."""
    mask = torch.ones(*shape)
    mask[..., box["top"]:box["top"] + box["h"], box["left"]:box["left"] + box["w"]] = 0
    return mask
