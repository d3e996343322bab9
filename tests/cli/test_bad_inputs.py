"""The bad-input suite: every command, every file format, fed what a user might get wrong.

Each case must end with exit code 2 and exactly one stderr line, `tweedie: error: ...`, that
names the input (the needles), carries no LibTorch trace, no raw library prefix and no control
byte, within a time limit (no hang), and leaves its working directory byte-for-byte as it was
(no new, changed or removed file). Cases run in parallel, each in its own copy of a small
workspace, so one process start-up (~1 s of LibTorch) per case stays affordable.
"""
import concurrent.futures
import hashlib
import json
import os
import shutil
import struct
import subprocess
import tempfile
import unittest
import zipfile
import zlib

import numpy as np

from tweedie_cli import BIN, run

TIMEOUT_S = 120
RAW = ["Exception raised from", "enforce fail", "Traceback", "terminate called", "what():",
       "json.exception", "std::bad_alloc", "filesystem error", "A subcommand is required"]


def png_bytes(chunks):
    out = b"\x89PNG\r\n\x1a\n"
    for kind, data in chunks:
        out += struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return out


def gray_png(h, w):
    raw = b"".join(b"\x00" + bytes((x * 7 + y) % 256 for x in range(w)) for y in range(h))
    return png_bytes([(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)),
                      (b"IDAT", zlib.compress(raw)), (b"IEND", b"")])


def write(path, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode) as f:
        f.write(data)


def safetensors_bytes(tensors, metadata):
    """A safetensors file: 8-byte header length, JSON header, then the arrays' bytes."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        kind = {np.dtype("float64"): "F64", np.dtype("int64"): "I64", np.dtype("float32"): "F32"}[a.dtype]
        header[name] = {"dtype": kind, "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        blobs.append(a.tobytes())
        offset += a.nbytes
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def gmm_tensors(shape):
    """A valid one-component Gaussian-mixture prior over items of `shape` (gmm_prior.h)."""
    n = int(np.prod(shape))
    return {"fixed": np.zeros(n), "active": np.arange(n, dtype=np.int64), "log_weights": np.zeros(1),
            "means": np.zeros((1, n)), "basis": np.eye(n)[:, :1], "eigvals": np.full((1, 1), 0.5),
            "eigvecs": np.ones((1, 1, 1)), "residual": np.full(1, 0.1)}


def make_workspace(d):
    """The files the cases point at: good ones, corrupt ones, and JSON with wrong types."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (2, 1, 32, 32)).astype(np.float32)
    np.save(os.path.join(d, "x.npy"), x)
    np.save(os.path.join(d, "x30.npy"), rng.uniform(-1, 1, (4, 1, 30, 30)).astype(np.float32))
    np.save(os.path.join(d, "x_rect.npy"), rng.uniform(-1, 1, (4, 1, 32, 16)).astype(np.float32))
    np.save(os.path.join(d, "empty.npy"), np.zeros((0, 1, 32, 32), np.float32))
    np.save(os.path.join(d, "x3d.npy"), x[0])
    np.save(os.path.join(d, "x5d.npy"), x[None])
    np.save(os.path.join(d, "xnan.npy"), np.full((2, 1, 32, 32), np.nan, np.float32))
    np.save(os.path.join(d, "labels.npy"), np.arange(10))
    write(os.path.join(d, "img.png"), gray_png(32, 32))
    write(os.path.join(d, "file.txt"), "an existing file, not a directory\n")
    os.mkdir(os.path.join(d, "adir"))
    write(os.path.join(d, "empty.bin"), b"")
    garbage = bytes(rng.integers(0, 256, 4096, dtype=np.uint8))
    for ext in ["npy", "png", "safetensors", "pt", "json"]:
        write(os.path.join(d, "garbage." + ext), garbage)
    # Truncated and lying headers.
    with open(os.path.join(d, "x.npy"), "rb") as f:
        good_npy = f.read()
    write(os.path.join(d, "trunc.npy"), good_npy[: len(good_npy) // 2])
    write(os.path.join(d, "huge_shape.npy"),
          good_npy.replace(b"(2, 1, 32, 32)", b"(99999999999, 1, 32, 32)")
          if b"(2, 1, 32, 32)" in good_npy else good_npy[:100])
    hdr = json.dumps({"w": {"dtype": "F32", "shape": [1000000, 1000000], "data_offsets": [0, 4]}}).encode()
    write(os.path.join(d, "lying.safetensors"), struct.pack("<Q", len(hdr)) + hdr + b"\0\0\0\0")
    # Control bytes that would act on a terminal if echoed: a pickle class name with ESC [2J
    # (clear screen), a PNG chunk type made of control bytes, JSON with a raw ESC.
    pkl = b"\x80\x02c\x1b[2Jevil\nCls\x07\n)R."
    with zipfile.ZipFile(os.path.join(d, "esc.pt"), "w") as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/version", "3\n")
    write(os.path.join(d, "esc.png"), png_bytes([(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 0, 0, 0, 0)),
                                                 (b"\x1b[2J", b"x"), (b"IEND", b"")]))
    write(os.path.join(d, "esc.json"), '{"name": \x1b[2J}')
    # Gaussian-mixture priors (--prior gmm:FILE): valid but 1x2x3, mis-shaped, NaN, no metadata.
    meta = {"tweedie.gmm": json.dumps({"item_shape": [1, 2, 3]})}
    write(os.path.join(d, "gmm_small.safetensors"), safetensors_bytes(gmm_tensors([1, 2, 3]), meta))
    write(os.path.join(d, "gmm_shape.safetensors"),
          safetensors_bytes(dict(gmm_tensors([1, 2, 3]), means=np.zeros((1, 5))), meta))
    write(os.path.join(d, "gmm_nan.safetensors"),
          safetensors_bytes(dict(gmm_tensors([1, 2, 3]), eigvals=np.full((1, 1), np.nan)), meta))
    write(os.path.join(d, "gmm_nometa.safetensors"), safetensors_bytes(gmm_tensors([1, 2, 3]), {}))
    # Configs and architectures.
    write(os.path.join(d, "bad.json"), '{"count": 4,')
    write(os.path.join(d, "cfg_unknown.json"), json.dumps({"no_such_option": 1}))
    write(os.path.join(d, "cfg_nested.json"), json.dumps({"count": {"a": 1}}))
    arch = {"image_size": 32, "in_channels": 1, "model_channels": 32, "out_channels": 1, "num_res_blocks": 1,
            "attention_resolutions": [], "channel_mult": [1, 2]}
    write(os.path.join(d, "arch32.json"), json.dumps(arch))
    write(os.path.join(d, "arch_str.json"), json.dumps(dict(arch, model_channels="64")))
    write(os.path.join(d, "arch_huge.json"), json.dumps(dict(arch, model_channels=320000)))
    exp = {"name": "bad", "images": "x.npy", "output": "exp-out",
           "problems": [{"name": "cs", "op": "gaussian:m=64", "channel": "sign:sigma=0.3"}],
           "methods": [{"method": "diff-onebit", "set": {"steps": 2}}]}
    write(os.path.join(d, "exp_ok.json"), json.dumps(exp))
    write(os.path.join(d, "exp_type.json"), json.dumps(dict(exp, batch="two")))
    write(os.path.join(d, "exp_name_type.json"), json.dumps(dict(exp, name=5)))
    write(os.path.join(d, "exp_sweep.json"), json.dumps(dict(exp, problems=[dict(exp["problems"][0], sweep={"s": "x"})])))
    write(os.path.join(d, "exp_method.json"), json.dumps(dict(exp, methods=[{"method": "bogus"}])))
    write(os.path.join(d, "exp_option.json"), json.dumps(dict(exp, methods=[{"method": "diff-onebit", "set": {"zzz": 1}}])))
    write(os.path.join(d, "exp_key.json"), json.dumps(dict(exp, unknown_key=1)))
    write(os.path.join(d, "exp_noprob.json"), json.dumps(dict(exp, problems=[])))
    write(os.path.join(d, "exp_images.json"), json.dumps(dict(exp, images="missing.npy")))
    write(os.path.join(d, "exp_outfile.json"), json.dumps(dict(exp, output="file.txt")))
    write(os.path.join(d, "exp_op.json"), json.dumps(dict(exp, problems=[{"name": "cs", "op": "bogus:m=1"}])))
    write(os.path.join(d, "exp_set_type.json"), json.dumps(dict(exp, methods=[{"method": "diff-onebit", "set": {"steps": {"a": 1}}}])))


def make_problems(d):
    """A problem written by tweedie simulate, and copies with one thing wrong in problem.json."""
    run("simulate", "--input", os.path.join(d, "x.npy"), "--op", "gaussian:m=64", "--channel", "sign:sigma=0.3",
        "-o", os.path.join(d, "good"), "--quiet", check=0)
    with open(os.path.join(d, "good", "problem.json")) as f:
        base = json.load(f)

    def variant(name, patch=None, drop=None, y=None):
        dst = os.path.join(d, name)
        shutil.copytree(os.path.join(d, "good"), dst)
        j = dict(base)
        if patch:
            j.update(patch)
        if drop:
            j.pop(drop)
        write(os.path.join(dst, "problem.json"), json.dumps(j))
        if y is not None:
            np.save(os.path.join(dst, "y.npy"), y)

    variant("p_xshape", {"x_shape": [1, 30, 30]})
    variant("p_xtype", {"x_shape": "1x32x32"})
    variant("p_seedtype", {"seed": "zero"})
    variant("p_noop", drop="operator")
    variant("p_newer", {"format_version": 99})
    variant("p_ybad", y=np.zeros((2, 10), np.float32))
    variant("p_ynan", y=np.full((2, 64), np.nan, np.float32))
    # A truth of the right item shape lives beside the problem but disagrees with x_shape.
    variant("p_truth", {"x_shape": [1, 16, 64]})
    write(os.path.join(d, "p_badjson.json"), "{ not json")


# (args, needles): each must exit 2 with one line naming every needle ("!x": must not name x).
CASES = [
    # dispatch and shared options
    (["frobnicate"], ["frobnicate"]),
    (["info"], ["file"]),
    (["info", "--no-such-flag", "x.npy"], ["--no-such-flag"]),
    (["dataset", "list", "--threads", "100000"], ["--threads"]),
    (["dataset", "list", "--threads", "-1"], ["--threads"]),
    (["dataset", "list", "--threads", "two"], ["--threads"]),
    (["dataset", "list", "--seed", "-1"], ["--seed"]),
    (["dataset", "list", "--seed", "abc"], ["--seed"]),
    (["dataset", "list", "--seed", "1e400"], ["--seed"]),
    (["dataset", "list", "--device", "tpu"], ["tpu"]),
    (["dataset", "list", "--device", "cuda:x"], ["cuda"]),
    (["dataset", "list", "--config", "missing.json"], ["missing.json"]),
    (["dataset", "list", "--config", "bad.json"], ["JSON"]),
    (["dataset", "list", "--config", "cfg_unknown.json"], ["no_such_option"]),
    (["dataset", "fashion-mnist", "--config", "cfg_nested.json"], ["count"]),
    (["dataset", "list", "--config", "esc.json"], ["JSON"]),
    # info
    (["info", "missing.npy"], ["missing.npy"]),
    (["info", "adir"], ["adir"]),
    (["info", "/dev/zero"], ["/dev/zero"]),
    (["info", "garbage.npy"], ["garbage.npy"]),
    (["info", "garbage.safetensors"], ["garbage.safetensors"]),
    (["info", "garbage.png"], ["garbage.png"]),
    (["info", "garbage.pt"], ["garbage.pt"]),
    (["info", "trunc.npy"], ["trunc.npy"]),
    (["info", "lying.safetensors"], ["lying.safetensors"]),
    (["info", "esc.pt"], ["esc.pt"]),
    (["info", "esc.png"], ["esc.png"]),
    (["info", "empty.bin"], ["empty.bin"]),
    # convert
    (["convert", "missing.npy", "o.png"], ["missing.npy"]),
    (["convert", "x.npy", "o.jpg"], ["o.jpg"]),
    (["convert", "x.txt", "o.png"], ["x.txt"]),
    (["convert", "x.npy", "adir"], ["adir"]),
    (["convert", "x.npy", "file.txt/o.png"], ["file.txt"]),
    (["convert", "x.npy", "o.png", "--range", "1,0"], ["--range"]),
    (["convert", "x.npy", "o.png", "--range", "abc"], ["--range"]),
    (["convert", "x.npy", "o.png", "--range", "nan,1"], ["--range"]),
    (["convert", "x.npy", "o.png", "--cols", "0"], ["--cols"]),
    (["convert", "img.png", "o.npy", "--dtype", "int7"], ["--dtype"]),
    (["convert", "garbage.npy", "o.png"], ["garbage.npy"]),
    (["convert", "x5d.npy", "o.png"], ["x5d.npy"]),
    (["convert", "huge_shape.npy", "o.png"], ["huge_shape.npy"]),
    (["convert", "garbage.png", "o.npy"], ["garbage.png"]),
    (["convert", "esc.png", "o.npy"], ["esc.png"]),
    # dataset
    (["dataset", "no-such-image", "-o", "o.png"], ["no-such-image"]),
    (["dataset", "fashion-mnist"], ["--output"]),
    (["dataset", "fashion-mnist", "-o", "o.txt"], ["o.txt"]),
    (["dataset", "fashion-mnist", "-o", "file.txt/o.png"], ["file.txt"]),
    (["dataset", "fashion-mnist", "-o", "adir"], ["adir"]),
    (["dataset", "fashion-mnist", "-o", "o.png", "--split", "bogus"], ["--split"]),
    (["dataset", "fashion-mnist", "-o", "o.png", "--count", "0"], ["--count"]),
    (["dataset", "fashion-mnist", "-o", "o.png", "--count", "nan"], ["--count"]),
    (["dataset", "fashion-mnist", "-o", "o.png", "--offset", "999999"], ["--offset"]),
    (["dataset", "camera", "-o", "o.png", "--size", "1000000"], ["--size"]),
    (["dataset", "camera", "-o", "o.png", "--size", "-3"], ["--size"]),
    (["dataset", "fashion-mnist", "-o", "o.png", "--cols", "0"], ["--cols"]),
    (["dataset", "fashion-mnist", "-o", "o.png", "--labels", "l.txt"], ["--labels"]),
    # simulate
    (["simulate", "--op", "gaussian:m=8", "-o", "out"], ["--input"]),
    (["simulate", "--input", "missing.npy", "--op", "gaussian:m=8", "-o", "out"], ["missing.npy"]),
    (["simulate", "--input", "x.npy", "-o", "out"], ["--op"]),
    (["simulate", "--input", "x.npy", "--op", "bogus", "-o", "out"], ["bogus"]),
    (["simulate", "--input", "x.npy", "--op", "gaussian", "-o", "out"], ["gaussian"]),
    (["simulate", "--input", "x.npy", "--op", "gaussian:m=abc", "-o", "out"], ["m"]),
    (["simulate", "--input", "x.npy", "--op", "gaussian:m=-5", "-o", "out"], ["m"]),
    (["simulate", "--input", "x.npy", "--op", "gaussian:m=100000000000", "-o", "out"], ["gaussian:m=100000000000"]),
    (["simulate", "--input", "x.npy", "--op", "gaussian:m=100000000000,impl=dense", "-o", "out"], ["gaussian:m="]),
    (["simulate", "--input", "x.npy", "--op", "gaussian:m=8,zzz=1", "-o", "out"], ["zzz"]),
    (["simulate", "--input", "x.npy", "--op", "gaussian:m=8", "--channel", "bogus", "-o", "out"], ["bogus"]),
    (["simulate", "--input", "x.npy", "--op", "gaussian:m=8", "--channel", "sign:sigma=nan", "-o", "out"], ["sigma"]),
    (["simulate", "--input", "x.npy", "--op", "gaussian:m=8", "--channel", "sign:sigma=-1", "-o", "out"], ["sigma"]),
    (["simulate", "--input", "x.npy", "--op", "gaussian:m=8", "-o", "file.txt"], ["file.txt"]),
    (["simulate", "--input", "x.npy", "--op", "gaussian:m=8", "-o", "file.txt/sub"], ["file.txt"]),
    (["simulate", "--input", "camera", "--op", "gaussian:m=8", "--size", "1000000", "-o", "out"], ["--size"]),
    (["simulate", "--input", "garbage.png", "--op", "gaussian:m=8", "-o", "out"], ["garbage.png"]),
    (["simulate", "--input", "xnan.npy", "--op", "gaussian:m=8", "-o", "out"], ["xnan.npy"]),
    (["simulate", "--input", "x.npy", "--op", "inpaint:p=2", "-o", "out"], ["inpaint"]),
    (["simulate", "--input", "x.npy", "--op", "blur:sigma=nan", "-o", "out"], ["blur"]),
    # solve
    (["solve", "--problem", "good", "-o", "out"], ["--method"]),
    (["solve", "--problem", "good", "--method", "diff-onebit"], ["--output"]),
    (["solve", "--problem", "good", "--method", "bogus", "-o", "out"], ["bogus"]),
    (["solve", "--problem", "good", "--method", "diff-onebit", "--set", "steps", "-o", "out"], ["steps"]),
    (["solve", "--problem", "good", "--method", "diff-onebit", "--set", "zzz=1", "-o", "out"], ["zzz"]),
    (["solve", "--problem", "good", "--method", "diff-onebit", "--set", "lambda=nan", "-o", "out"], ["lambda"]),
    (["solve", "--problem", "good", "--method", "diff-onebit", "--set", "steps=-4", "-o", "out"], ["steps"]),
    (["solve", "--problem", "missing", "--method", "diff-onebit", "-o", "out"], ["missing"]),
    (["solve", "--problem", "good", "--method", "diff-onebit", "-o", "file.txt"], ["--output", "file.txt"]),
    (["solve", "--problem", "good", "--method", "diff-onebit", "-o", "file.txt/sub"], ["file.txt"]),
    (["solve", "--problem", "good", "--input", "x.npy", "--method", "diff-onebit", "-o", "out"], ["--problem"]),
    (["solve", "--problem", "p_xshape", "--method", "diff-onebit", "-o", "out"], ["p_xshape", "!--truth"]),
    (["solve", "--problem", "p_xtype", "--method", "diff-onebit", "-o", "out"], ["p_xtype", "x_shape"]),
    (["solve", "--problem", "p_seedtype", "--method", "diff-onebit", "-o", "out"], ["p_seedtype", "seed"]),
    (["solve", "--problem", "p_noop", "--method", "diff-onebit", "-o", "out"], ["operator"]),
    (["solve", "--problem", "p_newer", "--method", "diff-onebit", "-o", "out"], ["newer"]),
    (["solve", "--problem", "p_ybad", "--method", "diff-onebit", "-o", "out"], ["y.npy"]),
    (["solve", "--problem", "p_ynan", "--method", "diff-onebit", "-o", "out"], ["y.npy"]),
    (["solve", "--problem", "p_truth", "--method", "diff-onebit", "-o", "out"], ["p_truth", "!--truth"]),
    (["solve", "--problem", "p_badjson.json", "--method", "diff-onebit", "-o", "out"], ["p_badjson.json"]),
    (["solve", "--problem", "good", "--method", "diff-onebit", "--prior", "garbage.safetensors", "-o", "out"],
     ["garbage.safetensors"]),
    (["solve", "--problem", "good", "--method", "diff-onebit", "--prior", "missing.safetensors", "-o", "out"],
     ["missing.safetensors"]),
    (["solve", "--problem", "good", "--method", "diff-onebit", "--prior", "esc.pt", "-o", "out"], ["esc.pt"]),
    (["solve", "--problem", "good", "--method", "diff-onebit", "--prior", "gmm:garbage.safetensors", "-o", "out"],
     ["garbage.safetensors"]),
    (["solve", "--problem", "good", "--method", "diff-onebit", "--prior", "gmm:gmm_small.safetensors", "-o", "out"],
     ["gmm_small.safetensors", "[1, 2, 3]"]),
    (["solve", "--problem", "good", "--method", "dps", "--prior", "gmm:gmm_shape.safetensors", "-o", "out"],
     ["gmm_shape.safetensors", "'means'"]),
    (["solve", "--problem", "good", "--method", "diff-onebit", "--classifier", "garbage.safetensors", "-o", "out"],
     ["garbage.safetensors"]),
    (["solve", "--problem", "good", "--method", "diff-onebit", "--truth", "x30.npy", "-o", "out"], ["--truth"]),
    (["solve", "--problem", "good", "--method", "diff-onebit", "--truth", "missing.npy", "-o", "out"], ["missing.npy"]),
    (["solve", "--problem", "good", "--method", "diff-onebit", "--batch", "-1", "-o", "out"], ["--batch"]),
    (["solve", "--problem", "good", "--method", "diff-onebit", "--preview-every", "-1", "-o", "out"],
     ["--preview-every"]),
    (["solve", "--problem", "good", "--method", "diff-onebit", "--arch", "arch_str.json", "-o", "out"],
     ["arch_str.json", "model_channels"]),
    (["solve", "--input", "x.npy", "--op", "hdr", "--method", "ddrm", "-o", "out"], ["ddrm", "hdr"]),
    (["solve", "--input", "x.npy", "--op", "phase", "--method", "ddnm", "-o", "out"], ["ddnm", "phase"]),
    (["solve", "--input", "missing.npy", "--op", "gaussian:m=8", "--method", "diff-onebit", "-o", "out"],
     ["missing.npy"]),
    (["solve", "--input", "x.npy", "--method", "diff-onebit", "-o", "out"], ["--op"]),
    (["solve", "--problem", "good", "--method", "diff-onebit", "--threads", "nan", "-o", "out"], ["--threads"]),
    (["solve", "--list", "--seed", "-3"], ["--seed"]),
    # sample
    (["sample", "-o", "s.txt"], ["s.txt"]),
    (["sample", "-o", "file.txt/s.png"], ["file.txt"]),
    (["sample", "-o", "adir"], ["adir"]),
    (["sample", "-o", "s.png", "--count", "0"], ["--count"]),
    (["sample", "-o", "s.png", "--eta", "nan"], ["--eta"]),
    (["sample", "-o", "s.png", "--eta", "-1"], ["--eta"]),
    (["sample", "-o", "s.png", "--sampler", "bogus"], ["--sampler"]),
    (["sample", "-o", "s.png", "--steps", "abc"], ["abc"]),
    (["sample", "-o", "s.png", "--steps", "0"], ["0"]),
    (["sample", "-o", "s.png", "--model", "missing.safetensors"], ["missing.safetensors"]),
    (["sample", "-o", "s.png", "--model", "garbage.safetensors"], ["garbage.safetensors"]),
    (["sample", "-o", "s.png", "--model", "garbage.pt"], ["garbage.pt"]),
    (["sample", "-o", "s.png", "--prior", "gmm:missing.safetensors"], ["missing.safetensors"]),
    (["sample", "-o", "s.png", "--prior", "gmm:gmm_nan.safetensors"], ["gmm_nan.safetensors", "NaN"]),
    (["sample", "-o", "s.png", "--prior", "gmm:gmm_nometa.safetensors"], ["gmm_nometa.safetensors", "not a GMM"]),
    (["sample", "-o", "s.png", "--prior", "gmm:x.npy"], ["x.npy"]),
    (["sample", "-o", "s.png", "--prior", "gmm:gmm_small.safetensors", "--arch", "arch32.json"], ["architecture"]),
    (["sample", "-o", "s.npy", "--sampler", "exact"], ["--sampler"]),
    (["experiment", "exp_ok.json", "--prior", "gmm:gmm_small.safetensors"], ["--prior", "--output"]),
    (["experiment", "exp_ok.json", "--prior", "gmm:gmm_small.safetensors", "-o", "e2"], ["[1, 2, 3]"]),
    # sample-eval
    (["sample-eval", "--count", "1"], ["--count"]),
    (["sample-eval", "--ddim-steps", "0", "--ddpm-steps", "0"], ["--ddim-steps"]),
    (["sample-eval", "--ddim-steps", "2000"], ["--ddim-steps"]),
    (["sample-eval", "-o", "file.txt/se"], ["file.txt"]),
    (["sample-eval", "-o", "se", "--prior", "gmm:gmm_shape.safetensors"], ["gmm_shape.safetensors"]),
    (["sample-eval", "-o", "se", "--prior", "gmm:gmm_small.safetensors"], ["gmm_small.safetensors", "1x2x3"]),
    (["sample-eval", "-o", "se", "--classifier", "garbage.safetensors"], ["garbage.safetensors"]),
    (["sample-eval", "-o", "se", "--bootstrap", "-1"], ["--bootstrap"]),
    # fit-gmm
    (["fit-gmm"], ["--out"]),
    (["fit-gmm", "-o", "file.txt"], ["file.txt"]),
    (["fit-gmm", "-o", "g", "--components-per-class", "0"], ["--components-per-class"]),
    (["fit-gmm", "-o", "g", "--variance-floor", "nan"], ["--variance-floor"]),
    (["fit-gmm", "-o", "g", "--dims", "5000", "--count", "100"], ["--dims"]),
    (["fit-gmm", "-o", "g", "--count", "1"], ["--count"]),
    (["sample", "-o", "s.png", "--arch", "arch_str.json"], ["arch_str.json"]),
    (["sample", "-o", "s.png", "--arch", "arch_huge.json"], ["model_channels=320000"]),
    (["sample", "-o", "s.png", "--batch-size", "0"], ["--batch-size"]),
    (["sample", "-o", "s.png", "--cols", "0"], ["--cols"]),
    # train
    (["train", "-o", "file.txt", "--data", "x.npy", "--steps", "1"], ["--out", "file.txt"]),
    (["train", "-o", "file.txt/run", "--data", "x.npy", "--steps", "1"], ["file.txt"]),
    (["train", "-o", "run", "--data", "empty.npy", "--steps", "1"], ["empty.npy"]),
    (["train", "-o", "run", "--data", "x3d.npy", "--steps", "1"], ["x3d.npy"]),
    (["train", "-o", "run", "--data", "x_rect.npy", "--steps", "1"], ["x_rect.npy"]),
    (["train", "-o", "run", "--data", "x30.npy", "--arch", "arch32.json", "--steps", "1"], ["--arch", "x30.npy"]),
    (["train", "-o", "run", "--data", "missing.npy", "--steps", "1"], ["missing.npy"]),
    (["train", "-o", "run", "--data", "garbage.npy", "--steps", "1"], ["garbage.npy"]),
    (["train", "-o", "run", "--data", "xnan.npy", "--steps", "1"], ["xnan.npy"]),
    (["train", "-o", "run", "--data", "x.npy", "--ema-decay", "2"], ["--ema-decay"]),
    (["train", "-o", "run", "--data", "x.npy", "--ema-decay", "nan"], ["--ema-decay"]),
    (["train", "-o", "run", "--data", "x.npy", "--ema-decay", "-0.5"], ["--ema-decay"]),
    (["train", "-o", "run", "--data", "x.npy", "--lr", "0"], ["--lr"]),
    (["train", "-o", "run", "--data", "x.npy", "--lr", "nan"], ["--lr"]),
    (["train", "-o", "run", "--data", "x.npy", "--lr", "inf"], ["--lr"]),
    (["train", "-o", "run", "--data", "x.npy", "--model-channels", "320000"], ["model_channels=320000"]),
    (["train", "-o", "run", "--data", "x.npy", "--model-channels", "33"], ["channel_mult"]),
    (["train", "-o", "run", "--data", "x.npy", "--batch-size", "0"], ["--batch-size"]),
    (["train", "-o", "run", "--data", "x.npy", "--schedule", "bogus"], ["--schedule"]),
    (["train", "-o", "run", "--data", "x.npy", "--dropout", "1.5"], ["dropout"]),
    (["train", "-o", "run", "--data", "x.npy", "--arch", "arch_str.json"], ["arch_str.json", "model_channels"]),
    (["train", "-o", "run", "--data", "x.npy", "--arch", "missing.json"], ["missing.json"]),
    (["train", "-o", "run", "--data", "x.npy", "--arch", "bad.json"], ["bad.json"]),
    (["train", "-o", "run", "--data", "x.npy", "--channel-mult", "a,b"], ["--channel-mult"]),
    (["train", "-o", "run", "--data", "x.npy", "--grad-clip", "-1"], ["--grad-clip"]),
    (["train", "-o", "run", "--data", "x.npy", "--weight-decay", "-1"], ["--weight-decay"]),
    (["train", "-o", "run", "--data", "x.npy", "--diffusion-steps", "0"], ["--diffusion-steps"]),
    (["train", "-o", "run", "--data", "x.npy", "--hflip", "maybe"], ["--hflip"]),
    # experiment
    (["experiment", "missing.json"], ["missing.json"]),
    (["experiment", "bad.json"], ["bad.json"]),
    (["experiment", "garbage.json"], ["garbage.json"]),
    (["experiment", "esc.json"], ["esc.json"]),
    (["experiment", "exp_type.json"], ["exp_type.json", "batch"]),
    (["experiment", "exp_name_type.json"], ["exp_name_type.json", "name"]),
    (["experiment", "exp_sweep.json"], ["exp_sweep.json", "sweep"]),
    (["experiment", "exp_method.json"], ["bogus"]),
    (["experiment", "exp_option.json"], ["zzz"]),
    (["experiment", "exp_set_type.json"], ["exp_set_type.json", "steps"]),
    (["experiment", "exp_key.json"], ["unknown_key"]),
    (["experiment", "exp_noprob.json"], ["problems"]),
    (["experiment", "exp_images.json"], ["missing.npy"]),
    (["experiment", "exp_outfile.json"], ["exp_outfile.json", "output"]),
    (["experiment", "exp_ok.json", "-o", "file.txt"], ["--output", "file.txt"]),
    (["experiment", "exp_op.json"], ["bogus"]),
    # metrics
    (["metrics", "missing.npy", "x.npy"], ["missing.npy"]),
    (["metrics", "x.npy", "x30.npy"], ["shape"]),
    (["metrics", "x.npy", "x.npy", "--range", "2,1"], ["--range"]),
    (["metrics", "x.npy", "x.npy", "--classifier", "garbage.safetensors"], ["garbage.safetensors"]),
    (["metrics", "x.npy", "x.npy", "-o", "adir"], ["adir"]),
    (["metrics", "x.npy", "x.npy", "-o", "file.txt/m.json"], ["file.txt"]),
    (["metrics", "garbage.npy", "x.npy"], ["garbage.npy"]),
    (["metrics", "xnan.npy", "x.npy"], ["xnan.npy"]),
    (["metrics", "x.npy", "fashion-mnist:test:0-999999"], ["fashion-mnist"]),
    # problem
    (["problem", "missing"], ["missing"]),
    (["problem", "p_xtype"], ["x_shape"]),
    (["problem", "p_noop"], ["operator"]),
    (["problem", "good", "--x", "missing.npy"], ["missing.npy"]),
    (["problem", "good", "--x", "x30.npy"], ["x30.npy"]),
    (["problem", "p_badjson.json"], ["p_badjson.json"]),
    # lowrank
    (["lowrank", "--task", "bogus", "-o", "lr"], ["--task"]),
    (["lowrank", "--task", "completion", "--eta", "nan", "-o", "lr"], ["--eta"]),
    (["lowrank", "--task", "completion", "--eta", "-1", "-o", "lr"], ["--eta"]),
    (["lowrank", "--task", "completion", "--n1", "10000000", "-o", "lr"], ["10000000"]),
    (["lowrank", "--task", "tucker", "--n1", "100000", "-o", "lr"], ["100000"]),
    (["lowrank", "--task", "completion", "--rank", "0", "-o", "lr"], ["rank"]),
    (["lowrank", "--task", "completion", "--rank", "1000", "-o", "lr"], ["rank"]),
    (["lowrank", "--task", "completion", "--kappa", "0.5", "-o", "lr"], ["kappa"]),
    (["lowrank", "--task", "completion", "--ratio", "2", "-o", "lr"], ["ratio"]),
    (["lowrank", "--task", "completion", "--method", "bogus", "-o", "lr"], ["bogus"]),
    (["lowrank", "--task", "completion", "-o", "file.txt"], ["file.txt"]),
    (["lowrank", "--task", "rpca", "--outliers", "0.7", "-o", "lr"], ["outlier"]),
    (["lowrank", "--task", "completion", "--noise", "-1", "-o", "lr"], ["--noise"]),
    (["lowrank", "--task", "completion", "--dtype", "bogus", "-o", "lr"], ["--dtype"]),
    (["lowrank", "--task", "completion", "--observations", "missing.npy", "-o", "lr"], ["missing.npy"]),
    (["lowrank", "--task", "completion", "--tolerance", "nan", "-o", "lr"], ["--tolerance"]),
    (["lowrank", "--task", "completion", "--lambda", "inf", "-o", "lr"], ["--lambda"]),
    # denoise-eval
    (["denoise-eval", "--data", "missing.npy"], ["missing.npy"]),
    (["denoise-eval", "--data", "x3d.npy"], ["x3d.npy"]),
    (["denoise-eval", "--count", "0"], ["--count"]),
    (["denoise-eval", "--sigmas", "nan"], ["--sigmas"]),
    (["denoise-eval", "--sigmas", "-1"], ["--sigmas"]),
    (["denoise-eval", "-o", "adir"], ["adir"]),
    (["denoise-eval", "--model", "garbage.safetensors"], ["garbage.safetensors"]),
    (["denoise-eval", "--prior", "gmm:gmm_small.safetensors"], ["gmm_small.safetensors", "1x2x3"]),
    (["denoise-eval", "--data", "x30.npy"], ["x30.npy"]),
    # doa
    (["doa", "--angles", "10", "--snr", "nan", "-o", "doa"], ["--snr"]),
    (["doa", "--angles", "10", "--elements", "1", "-o", "doa"], ["--elements"]),
    (["doa", "--angles", "10,20", "--powers", "1", "-o", "doa"], ["--powers"]),
    (["doa", "--angles", "10", "--span", "100", "-o", "doa"], ["--span"]),
    (["doa", "--angles", "10", "--method", "bogus", "-o", "doa"], ["bogus"]),
    (["doa", "--angles", "10", "--method", "diff-onebit", "-o", "doa"], ["diff-onebit"]),
    (["doa", "--angles", "10", "-o", "file.txt"], ["file.txt"]),
    (["doa", "--angles", "10", "--snapshots", "0", "-o", "doa"], ["--snapshots"]),
    (["doa", "--angles", "nan", "-o", "doa"], ["--angles"]),
    (["doa", "--angles", "95", "-o", "doa"], ["--angles"]),
    # train-classifier
    (["train-classifier"], ["--out"]),
    (["train-classifier", "-o", "file.txt"], ["file.txt"]),
    (["train-classifier", "-o", "cls", "--lr", "0"], ["--lr"]),
    (["train-classifier", "-o", "cls", "--channels", "a"], ["--channels"]),
    (["train-classifier", "--evaluate", "missing.safetensors"], ["missing.safetensors"]),
    (["train-classifier", "--evaluate", "garbage.safetensors"], ["garbage.safetensors"]),
    (["train-classifier", "-o", "cls", "--batch-size", "0"], ["--batch-size"]),
    (["train-classifier", "-o", "cls", "--weight-decay", "nan"], ["--weight-decay"]),
]


def snapshot(root):
    """Every file and directory under root with a hash of its content."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        out[rel + "/"] = None
        for f in filenames:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.join(rel, f)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def check_case(template, scratch, index, args, needles):
    """Runs one case in its own copy of the workspace; returns a list of problems (empty = ok)."""
    work = os.path.join(scratch, f"case{index:03d}")
    shutil.copytree(template, work, symlinks=True)
    before = snapshot(work)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    try:
        p = subprocess.run([BIN, *args, "--threads", "1"] if "--threads" not in args else [BIN, *args],
                           cwd=work, capture_output=True, timeout=TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        return [f"hung for more than {TIMEOUT_S} s"]
    problems = []
    err = p.stderr.decode("utf-8", errors="replace")
    lines = err.strip("\n").split("\n") if err.strip() else []
    if p.returncode != 2:
        problems.append(f"exit {p.returncode}, expected 2")
    if len(lines) != 1:
        problems.append(f"{len(lines)} stderr lines, expected 1")
    line = lines[0] if lines else ""
    if not line.startswith("tweedie: error: "):
        problems.append("no 'tweedie: error: ' prefix")
    for n in needles:
        if n.startswith("!"):
            if n[1:] in line:
                problems.append(f"names {n[1:]!r}, which the case never gave")
        elif n not in line:
            problems.append(f"does not name {n!r}")
    for r in RAW:
        if r in err:
            problems.append(f"raw library text {r!r}")
    if any(b < 0x20 and b != 0x0a for b in p.stderr) or 0x7f in p.stderr:
        problems.append("control bytes on stderr")
    after = snapshot(work)
    if after != before:
        added = sorted(set(after) - set(before))
        changed = sorted(k for k in before if k in after and before[k] != after[k])
        removed = sorted(set(before) - set(after))
        problems.append(f"workspace changed: added {added} changed {changed} removed {removed}")
    shutil.rmtree(work, ignore_errors=True)
    if problems:
        return [f"tweedie {' '.join(args)}: " + "; ".join(problems) + f"\n    stderr: {err.strip()[:400]!r}"]
    return []


class BadInputs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="tweedie-bad-")
        cls.template = os.path.join(cls._tmp.name, "template")
        os.mkdir(cls.template)
        make_workspace(cls.template)
        make_problems(cls.template)

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def test_suite_is_large_and_covers_every_command(self):
        self.assertGreaterEqual(len(CASES), 150)
        commands = {a[0] for a, _ in CASES}
        for c in ["info", "convert", "dataset", "simulate", "solve", "sample", "train", "experiment",
                  "metrics", "problem", "lowrank", "denoise-eval", "doa", "train-classifier", "sample-eval", "fit-gmm"]:
            self.assertIn(c, commands)

    def test_every_bad_input_is_one_clear_line_exit_2_and_changes_nothing(self):
        only = os.environ.get("TWEEDIE_BAD_INPUT_FILTER", "")
        cases = [(i, a, n) for i, (a, n) in enumerate(CASES) if only in " ".join(a)]
        workers = int(os.environ.get("TWEEDIE_BAD_INPUT_JOBS", "3"))
        failures = []
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(check_case, self.template, self._tmp.name, i, a, n) for i, a, n in cases]
            for f in futures:
                failures += f.result()
        self.assertEqual(failures, [], f"{len(failures)} of {len(cases)} cases failed:\n" + "\n".join(failures))


if __name__ == "__main__":
    unittest.main()
