#!/usr/bin/python3
"""Writes the seed corpora under fuzz/corpus/<target>/ (small valid files, each < 20 KB).

Run with Debian's python3 (numpy, torch, PIL): /usr/bin/python3 fuzz/make_corpus.py
The files are committed; re-running rewrites them (torch.save output is not byte-stable across
torch versions, which is fine for seeds).
"""
import io
import json
import os
import pickle
import struct
import zipfile
import zlib
from collections import OrderedDict

import numpy as np
import torch
from PIL import Image, PngImagePlugin

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def out(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    assert len(data) < 20000, (target, name, len(data))
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def npy_bytes(a, **kw):
    b = io.BytesIO()
    np.lib.format.write_array(b, a, **kw)
    return b.getvalue()


def npy():
    rng = np.random.default_rng(0)
    cases = {
        "f32_2d": rng.standard_normal((3, 4)).astype("<f4"),
        "f64_1d": rng.standard_normal(5),
        "f16_3d": rng.standard_normal((2, 2, 3)).astype("<f2"),
        "i8": np.arange(-4, 4, dtype="i1"),
        "i16_be": np.arange(6, dtype=">i2").reshape(2, 3),
        "i32": np.arange(6, dtype="<i4"),
        "i64": np.arange(3, dtype="<i8"),
        "u8_img": rng.integers(0, 255, (1, 8, 8)).astype("u1"),
        "bool": np.array([True, False, True]),
        "c64": (rng.standard_normal(3) + 1j * rng.standard_normal(3)).astype("<c8"),
        "c128_be": (rng.standard_normal(2) + 1j).astype(">c16"),
        "scalar": np.float32(3.5).reshape(()),
        "empty": np.zeros((0, 3), "<f4"),
        "fortran": np.asfortranarray(rng.standard_normal((3, 2)).astype("<f4")),
        "f64_be_4d": rng.standard_normal((1, 2, 1, 2)).astype(">f8"),
    }
    for name, a in cases.items():
        out("npy", name + ".npy", npy_bytes(a))
    out("npy", "v2_f32.npy", npy_bytes(np.ones(3, "<f4"), version=(2, 0)))
    out("npy", "v3_f32.npy", npy_bytes(np.ones(2, "<f4"), version=(3, 0)))


def png_bytes(img, **kw):
    b = io.BytesIO()
    img.save(b, format="PNG", **kw)
    return b.getvalue()


def png():
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 256, (8, 8), dtype=np.uint8)
    rgb = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    out("png", "gray8.png", png_bytes(Image.fromarray(gray, "L")))
    out("png", "rgb8.png", png_bytes(Image.fromarray(rgb, "RGB")))
    out("png", "rgba8.png", png_bytes(Image.fromarray(rng.integers(0, 256, (4, 4, 4), dtype=np.uint8), "RGBA")))
    out("png", "gray_alpha.png", png_bytes(Image.fromarray(rng.integers(0, 256, (4, 4, 2), dtype=np.uint8), "LA")))
    out("png", "palette.png", png_bytes(Image.fromarray(rgb, "RGB").convert("P", palette=Image.ADAPTIVE, colors=8)))
    out("png", "bilevel.png", png_bytes(Image.fromarray(gray > 127).convert("1")))
    out("png", "gray16.png", png_bytes(Image.fromarray(rng.integers(0, 65536, (4, 4)).astype(np.uint16), "I;16")))
    info = PngImagePlugin.PngInfo()
    info.add_text("tweedie", json.dumps({"format": "tweedie-problem", "seed": 0}))
    info.add_text("Comment", "hello")
    out("png", "text.png", png_bytes(Image.fromarray(gray, "L"), pnginfo=info))
    # 16-bit RGB written by hand (PIL cannot): IHDR, one IDAT, IEND.
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    w, h = 3, 2
    raw = b"".join(b"\x00" + rng.integers(0, 256, w * 6, dtype=np.uint8).tobytes() for _ in range(h))
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    out("png", "rgb16.png", data)
    # Adam7-interlaced 8-bit gray 4x4 by hand: the 7 passes, each row with filter byte 0.
    img = rng.integers(0, 256, (4, 4), dtype=np.uint8)
    passes = [(0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2), (1, 0, 2, 1)]
    raw = b""
    for y0, x0, dy, dx in passes:  # (row start, col start, row step, col step)
        sub = img[y0::dy, x0::dx]
        if sub.size:
            raw += b"".join(b"\x00" + r.tobytes() for r in sub)
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 0, 0, 0, 1)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    out("png", "adam7.png", data)


def safetensors_bytes(tensors, metadata=None, align=8):
    header, blobs, offset = {}, [], 0
    names = {np.dtype("<f4"): "F32", np.dtype("<f8"): "F64", np.dtype("<f2"): "F16", np.dtype("<i8"): "I64",
             np.dtype("<i4"): "I32", np.dtype("<i2"): "I16", np.dtype("i1"): "I8", np.dtype("u1"): "U8",
             np.dtype("bool"): "BOOL"}
    for k, a in tensors.items():
        raw = a.tobytes()
        header[k] = {"dtype": names[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % align)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def safetensors():
    rng = np.random.default_rng(2)
    out("safetensors", "one.safetensors", safetensors_bytes({"w": rng.standard_normal((2, 3)).astype("<f4")}))
    out("safetensors", "many.safetensors", safetensors_bytes({
        "a.weight": rng.standard_normal(4).astype("<f8"), "b.bias": np.arange(3, dtype="<i8"),
        "c": np.ones((2, 2), "<f2"), "d": np.array([1, 0], bool), "e": np.arange(4, dtype="u1"),
        "f": np.arange(2, dtype="<i4"), "g": np.arange(2, dtype="<i2"), "h": np.arange(2, dtype="i1"),
        "scalar": np.array(2.0, "<f4"), "empty": np.zeros((0,), "<f4")},
        metadata={"format": "pt", "note": "seed"}))
    out("safetensors", "empty.safetensors", safetensors_bytes({}))
    # bfloat16 by hand
    h = json.dumps({"bf": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}).encode()
    out("safetensors", "bf16.safetensors", struct.pack("<Q", len(h)) + h + b"\x80\x3f\x00\x40")


def torch_files():
    torch.manual_seed(0)
    sd = OrderedDict([("conv.weight", torch.randn(2, 1, 3, 3)), ("conv.bias", torch.randn(2)),
                      ("bn.num_batches_tracked", torch.tensor(5)), ("mask", torch.tensor([True, False])),
                      ("half", torch.randn(3).half()), ("i8", torch.arange(4, dtype=torch.int8))])
    sd._metadata = OrderedDict([("", {"version": 1}), ("conv", {"version": 1})])
    base = torch.randn(4, 5)
    cases = {
        "state_dict": sd,
        "nested": {"state_dict": {"a": torch.randn(3)}, "epoch": 3, "ema": {"a": torch.randn(3)},
                   "args": ["x", 1.5, None, True, (1, 2)]},
        "views": {"t": base.t(), "slice": base[1:3, ::2], "row": base[2], "base": base},
        "dtypes": {"f64": torch.randn(2, dtype=torch.float64), "i16": torch.arange(3, dtype=torch.int16),
                   "i32": torch.arange(3, dtype=torch.int32), "i64": torch.arange(3), "u8": torch.arange(3, dtype=torch.uint8),
                   "bf16": torch.randn(2).bfloat16(), "c64": torch.randn(2, dtype=torch.complex64)},
        "scalar": {"s": torch.tensor(1.5), "e": torch.zeros(0, 3)},
        "param": {"p": torch.nn.Parameter(torch.randn(2))},
    }
    for name, obj in cases.items():
        b = io.BytesIO()
        torch.save(obj, b)
        out("torch_pt", name + ".pt", b.getvalue())
        b = io.BytesIO()
        torch.save(obj, b, _use_new_zipfile_serialization=False)
        out("torch_pt", name + "_legacy.pt", b.getvalue())
        if name in ("state_dict", "views", "nested"):
            b = io.BytesIO()
            torch.save(obj, b)
            out("zip", name + ".zip", b.getvalue())
            with zipfile.ZipFile(io.BytesIO(b.getvalue())) as z:
                for n in z.namelist():
                    if n.endswith("data.pkl"):
                        out("pickle", name + "_data.pkl", z.read(n))
            b = io.BytesIO()
            torch.save(obj, b, _use_new_zipfile_serialization=False)
            out("pickle", name + "_legacy.pkl", b.getvalue()[:4000])


def pickles():
    objs = {
        "dict": {"a": 1, "b": 2.5, "c": "text", "d": None, "e": True, "f": False},
        "ordered": OrderedDict([("x", (1, 2, 3)), ("y", [4, 5])]),
        "ints": [0, 1, -1, 255, 256, 65535, 65536, 2**31 - 1, -2**31, 2**63 - 1, -2**63, 2**64, -2**70],
        "floats": [0.0, -0.0, 1e308, float("inf"), float("nan"), 1e-320],
        "strings": ["", "a", "é", "x" * 300, b"bytes".decode()],
        "nested": {"a": {"b": {"c": {"d": [1, (2, {"e": 3})]}}}},
        "tuples": [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)],
        "memo": [[1, 2]] * 3,
    }
    for name, obj in objs.items():
        for proto in (2, 4):
            out("pickle", "%s_p%d.pkl" % (name, proto), pickle.dumps(obj, protocol=proto))


def zips():
    for name, kw in (("stored", {}), ("zip64", {"force_zip64": True})):
        b = io.BytesIO()
        with zipfile.ZipFile(b, "w", zipfile.ZIP_STORED) as z:
            z.writestr("archive/data.pkl", pickle.dumps({"a": 1}, protocol=2))
            with z.open("archive/data/0", "w", **kw) as f:
                f.write(b"\x00" * 16)
            z.writestr("archive/version", "3\n")
        out("zip", name + ".zip", b.getvalue())
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a/deflated.txt", "hello " * 20)
        z.comment = b"a comment"
    out("zip", "deflated_comment.zip", b.getvalue())
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        pass
    out("zip", "empty.zip", b.getvalue())


def configs():
    seeds = {
        "solve.json": '{"method": "dps", "threads": 2, "seed": 7, "set": ["steps=10", "zeta=0.5"], "verbose": true, "x": null}\n',
        "floats.json": '{"sigma": 0.5, "eta": -1e-3, "big": 12345678901234567890, "u": "\\u00e9"}',
        "solve.toml": '# comment\nmethod = "dps"\nthreads = 2\nseed = 7\nset = ["steps=10", "zeta=0.5"]\nverbose = true\n',
        "sections.toml": '[solve]\nmethod = "ddrm"\n[solve.sub]\nkey = 1\n[[arr]]\nx = 1\n',
        "multiline.toml": 'title = """multi\nline"""\nlit = \'literal\'\nlist = [1,\n 2,\n 3]\nx.y = 3\n',
        "ini.toml": '; ini style\n[default]\nkey=value\nflag\n',
    }
    for name, text in seeds.items():
        out("config", name, text.encode())
    for name in sorted(os.listdir(os.path.join(os.path.dirname(ROOT), "..", "configs", "lowrank"))):
        p = os.path.join(os.path.dirname(ROOT), "..", "configs", "lowrank", name)
        out("config", "lowrank_" + name, open(p, "rb").read())


def problems():
    base = {"format": "tweedie-problem", "format_version": 1, "tweedie_version": "0.1.0", "tweedie_git": "x",
            "seed": 3, "noise_seed": 1234, "batch": 2, "y_dtype": "float32", "y_file": "y.npy"}
    cases = [
        ("gaussian", "gaussian:m=16,var=1/m,seed=3,impl=dense", "sign:sigma=0.5", [1, 8, 8], [16]),
        ("gaussian_mf", "gaussian:m=8,var=1,seed=3,impl=matrix-free,block_rows=4", "gaussian:sigma=0.1", [1, 4, 4], [8]),
        ("identity", "identity", "gaussian:sigma=0.05", [1, 4, 4], [1, 4, 4]),
        ("scale", "scale:c=2", "identity", [1, 4, 4], [1, 4, 4]),
        ("srht", "srht:m=8,seed=1", "sign", [1, 4, 4], [8]),
        ("box", "box-mask:size=2,margin=1,seed=0", "gaussian:sigma=0.1", [1, 8, 8], [60]),
        ("random_mask", "random-mask:ratio=0.5,seed=0", "poisson:rate=10", [1, 8, 8], [32]),
        ("sr_avg", "sr-avg:factor=2", "identity", [3, 8, 8], [3, 4, 4]),
        ("sr_bicubic", "sr-bicubic:factor=2", "identity", [1, 8, 8], [1, 4, 4]),
        ("gblur", "gaussian-blur:size=5,std=1.0,boundary=zero", "identity", [1, 8, 8], [1, 8, 8]),
        ("mblur", "motion-blur:size=5,intensity=0.5,seed=2,boundary=circular", "identity", [1, 8, 8], [1, 8, 8]),
        ("mri", "mri:accel=4,pattern=equispaced,seed=0", "gaussian:sigma=0.01", [1, 8, 8], [1, 1, 8, 2]),
        ("phase", "phase:oversample=2.0,masks=0,seed=0", "gaussian:sigma=0.01", [1, 8, 8], [1, 12, 12]),
        ("hdr", "hdr:alpha=2", "identity", [1, 4, 4], [1, 4, 4]),
        ("chain", "sr-avg:factor=2|gaussian:m=4,seed=1", "quantize:bits=3", [1, 4, 4], [4]),
        ("stack", "identity&scale:c=3", "sign:sigma=0.1", [1, 2, 2], [8]),
    ]
    for name, op, ch, xs, ys in cases:
        j = dict(base, operator={"spec": op, "linear": True, "describe": "seed"}, channel={"spec": ch},
                 x_shape=xs, y_shape=ys)
        out("problem", name + ".json", (json.dumps(j, indent=1) + "\n").encode())


if __name__ == "__main__":
    npy()
    png()
    safetensors()
    torch_files()
    pickles()
    zips()
    configs()
    problems()
