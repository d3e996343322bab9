"""The Python module's bad-input table (issue 29 item 4), beside the CLI's tests/cli/test_bad_inputs.py.

Every case is a call a user can get wrong. Each must raise tweedie.InputError (a ValueError) whose
message is one line and names the argument or option, before any slow work: no crash (the test
process would die), no hang (each case has a time limit), no silent acceptance (the call must raise),
and no pybind wall of signatures.
"""
import os
import time

import numpy as np
import pytest
import torch

SR = ("sr-avg:factor=2", "gaussian:sigma=0.05")


@pytest.fixture(scope="module")
def setup(tweedie, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad")
    problem = tweedie.Problem(*SR, shape=(1, 32, 32))
    y = problem.simulate(torch.zeros(1, 1, 32, 32))
    (tmp / "notes.txt").write_text("not weights")
    (tmp / "empty.safetensors").write_bytes(b"")
    (tmp / "trunc.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":")
    return tweedie, problem, y, tmp


def solver_cases():
    """Per solver: bad values of its options, an unknown option and a wrong type."""
    try:
        import tweedie  # conftest put the build's python/ on the path
    except ImportError:
        return []  # test_the_table_has_at_least_100_cases reports it (under CI=true, a failure)
    cases = []
    for name, entry in sorted(tweedie.solvers().items()):
        opts = entry["options"]
        cases.append((f"{name}: unknown option", lambda t, p, y, d, n=name: t.solve(n, p, y, frobnicate=1),
                      "frobnicate"))
        cases.append((f"{name}: option given None", lambda t, p, y, d, n=name, k=sorted(opts)[0]: t.solve(n, p, y, **{k: None}),
                      sorted(opts)[0]))
        cases.append((f"{name}: option given a list", lambda t, p, y, d, n=name, k=sorted(opts)[0]: t.solve(n, p, y, **{k: [1]}),
                      sorted(opts)[0]))
        for key in ("steps", "iters", "sampling_steps", "annealing_steps", "gibbs_steps", "steps_each", "inner_steps"):
            if key in opts:
                cases.append((f"{name}: {key}=0", lambda t, p, y, d, n=name, k=key: t.solve(n, p, y, **{k: 0}), key))
                cases.append((f"{name}: {key}='many'", lambda t, p, y, d, n=name, k=key: t.solve(n, p, y, **{k: "many"}),
                              key))
                break
        for key in ("zeta", "lr", "eta", "lambda", "c_s", "step_lr", "eta_min", "rho"):
            if key in opts:
                cases.append((f"{name}: {key}=nan", lambda t, p, y, d, n=name, k=key: t.solve(n, p, y, **{k: float("nan")}),
                              key))
                break
    return cases


def argument_cases():
    def solve(**kw):
        return lambda t, p, y, d: t.solve("ddrm", kw.pop("problem", p), kw.pop("y", y), steps=2, **kw)
    nan_y = lambda t, p, y, d: t.solve("ddrm", p, torch.full_like(y, float("nan")), steps=2)
    return [
        # solve(): method, problem, y, seed, prior, callback, samples
        ("unknown method", lambda t, p, y, d: t.solve("frobnicate", p, y), "unknown method 'frobnicate'"),
        ("empty method", lambda t, p, y, d: t.solve("", p, y), "method"),
        ("problem is a string", lambda t, p, y, d: t.solve("ddrm", "sr-avg:factor=2", y), "problem: expected a tweedie.Problem"),
        ("problem is None", lambda t, p, y, d: t.solve("ddrm", None, y), "problem: expected a tweedie.Problem"),
        ("y is a string", lambda t, p, y, d: t.solve("ddrm", p, "y.npy"), "y: expected a torch.Tensor"),
        ("y is None", lambda t, p, y, d: t.solve("ddrm", p, None), "y: expected a torch.Tensor"),
        ("y is a dict", lambda t, p, y, d: t.solve("ddrm", p, {"y": 1}), "y: expected a torch.Tensor"),
        ("y has the wrong shape", lambda t, p, y, d: t.solve("ddrm", p, torch.zeros(1, 5)), "measurement has shape [1, 5]"),
        ("y has no batch", lambda t, p, y, d: t.solve("ddrm", p, torch.zeros(1, 16, 16)), "measurement has shape"),
        ("y holds NaN", nan_y, "NaN"),
        ("y holds Inf", lambda t, p, y, d: t.solve("ddrm", p, torch.full_like(y, float("inf")), steps=2), "NaN or Inf"),
        ("1-bit y not +-1", lambda t, p, y, d: t.solve("diff-onebit", t.Problem("gaussian:m=64", "sign:sigma=0.3", shape=(1, 32, 32)),
                                                       torch.full((1, 64), 0.5)), "must be -1 or +1"),
        ("seed -1", solve(seed=-1), "seed=-1: expected an integer in [0, 2^64 - 1]"),
        ("seed 2**64", solve(seed=2**64), "seed=18446744073709551616"),
        ("seed 1.5", solve(seed=1.5), "seed: expected an integer seed, got float"),
        ("seed '3'", solve(seed="3"), "seed: expected an integer seed, got str"),
        ("seed True", solve(seed=True), "seed: expected an integer seed, got bool"),
        ("seed None", solve(seed=None), "seed: expected an integer seed, got NoneType"),
        ("prior is an int", lambda t, p, y, d: t.solve("dps", p, y, prior=3, steps=2), "prior: expected"),
        ("prior path missing", lambda t, p, y, d: t.solve("dps", p, y, prior="/nonexistent/model.safetensors", steps=2),
         "/nonexistent/model.safetensors"),
        ("prior is a text file", lambda t, p, y, d: t.solve("dps", p, y, prior=str(d / "notes.txt"), steps=2), "notes.txt"),
        ("prior is empty", lambda t, p, y, d: t.solve("dps", p, y, prior=str(d / "empty.safetensors"), steps=2),
         "empty.safetensors"),
        ("prior is truncated", lambda t, p, y, d: t.solve("dps", p, y, prior=str(d / "trunc.safetensors"), steps=2),
         "trunc.safetensors"),
        ("prior gmm missing", lambda t, p, y, d: t.solve("dps", p, y, prior="gmm:/nonexistent.safetensors", steps=2),
         "nonexistent"),
        ("prior of another shape", lambda t, p, y, d: t.solve("dps", t.Problem("identity", "gaussian:sigma=0.1", shape=(1, 16, 16)),
                                                              torch.zeros(1, 1, 16, 16), steps=2), "prior"),
        ("callback is an int", solve(callback=3), "callback: expected a callable"),
        ("callback is a string", solve(callback="print"), "callback: expected a callable"),
        ("samples -1", solve(samples=-1), "samples must be >= 0"),
        ("exact without a mixture", lambda t, p, y, d: t.solve("exact", p, y), "Gaussian-mixture prior"),
        # Problem(): specs, shape, seed
        ("unknown operator", lambda t, p, y, d: t.Problem("frob", "gaussian:sigma=0.1", shape=(1, 32, 32)), "unknown operator 'frob'"),
        ("empty operator", lambda t, p, y, d: t.Problem("", "gaussian:sigma=0.1", shape=(1, 32, 32)), "op"),
        ("unknown channel", lambda t, p, y, d: t.Problem("identity", "frob", shape=(1, 32, 32)), "unknown channel 'frob'"),
        ("operator option typo", lambda t, p, y, d: t.Problem("gaussian:mm=4", "gaussian:sigma=0.1", shape=(1, 32, 32)), "mm"),
        ("operator option value", lambda t, p, y, d: t.Problem("gaussian:m=abc", "gaussian:sigma=0.1", shape=(1, 32, 32)), "m='abc'"),
        ("operator twice", lambda t, p, y, d: t.Problem("gaussian:m=4,m=5", "gaussian:sigma=0.1", shape=(1, 32, 32)), "twice"),
        ("channel sigma negative", lambda t, p, y, d: t.Problem("identity", "gaussian:sigma=-1", shape=(1, 32, 32)), "sigma"),
        ("channel sigma nan", lambda t, p, y, d: t.Problem("identity", "gaussian:sigma=nan", shape=(1, 32, 32)), "sigma"),
        ("quantize bits 40", lambda t, p, y, d: t.Problem("identity", "quantize:bits=40", shape=(1, 32, 32)), "bits"),
        ("sr factor not dividing", lambda t, p, y, d: t.Problem("sr-avg:factor=3", "gaussian:sigma=0.1", shape=(1, 32, 32)), "divisible"),
        ("box too large", lambda t, p, y, d: t.Problem("box-mask:size=64", "gaussian:sigma=0.1", shape=(1, 32, 32)), "does not fit"),
        ("blur even size", lambda t, p, y, d: t.Problem("gaussian-blur:size=4", "gaussian:sigma=0.1", shape=(1, 32, 32)), "size"),
        ("mri accel 0", lambda t, p, y, d: t.Problem("mri:accel=0", "gaussian:sigma=0.1", shape=(1, 32, 32)), "accel"),
        ("phase oversample huge", lambda t, p, y, d: t.Problem("phase:oversample=1e20", "gaussian:sigma=0.1", shape=(1, 32, 32)),
         "oversample"),
        ("random mask ratio 1", lambda t, p, y, d: t.Problem("random-mask:ratio=1", "gaussian:sigma=0.1", shape=(1, 32, 32)), "ratio"),
        ("gaussian m too large", lambda t, p, y, d: t.Problem("gaussian:m=1000000000000,impl=dense", "gaussian:sigma=0.1",
                                                              shape=(1, 32, 32)), "gaussian:m=1000000000000"),
        ("negative dimension", lambda t, p, y, d: t.Problem("identity", "gaussian:sigma=0.1", shape=(1, -32, 32)),
         "op: input shape [1, -32, 32] has a dimension below 1"),
        ("zero dimension", lambda t, p, y, d: t.Problem("identity", "gaussian:sigma=0.1", shape=(1, 0, 32)), "dimension below 1"),
        ("empty shape", lambda t, p, y, d: t.Problem("identity", "gaussian:sigma=0.1", shape=()), "empty"),
        ("shape too large", lambda t, p, y, d: t.Problem("identity", "gaussian:sigma=0.1", shape=(1, 2**40, 2**40)), "needs"),
        ("image operator on vectors", lambda t, p, y, d: t.Problem("sr-avg:factor=2", "gaussian:sigma=0.1", shape=(64,)),
         "needs images"),
        ("Problem seed -1", lambda t, p, y, d: t.Problem("identity", "gaussian:sigma=0.1", shape=(1, 32, 32), seed=-1), "seed=-1"),
        ("Problem seed float", lambda t, p, y, d: t.Problem("identity", "gaussian:sigma=0.1", shape=(1, 32, 32), seed=0.5),
         "seed: expected an integer seed"),
        # simulate(): images
        ("simulate uint8", lambda t, p, y, d: p.simulate(torch.zeros(1, 1, 32, 32, dtype=torch.uint8)),
         "x: integer images (Byte)"),
        ("simulate int64", lambda t, p, y, d: p.simulate(torch.zeros(1, 1, 32, 32, dtype=torch.int64)), "x: integer images (Long)"),
        ("simulate bool", lambda t, p, y, d: p.simulate(torch.zeros(1, 1, 32, 32, dtype=torch.bool)), "x: integer images (Bool)"),
        ("simulate NaN", lambda t, p, y, d: p.simulate(torch.full((1, 1, 32, 32), float("nan"))), "x: contains NaN or Inf"),
        ("simulate Inf", lambda t, p, y, d: p.simulate(torch.full((1, 1, 32, 32), float("inf"))), "x: contains NaN or Inf"),
        ("simulate wrong shape", lambda t, p, y, d: p.simulate(torch.zeros(1, 1, 16, 16)), "input has shape [1, 1, 16, 16]"),
        ("simulate no batch", lambda t, p, y, d: p.simulate(torch.zeros(1, 32, 32)), "input has shape"),
        ("simulate a string", lambda t, p, y, d: p.simulate("x.png"), "x: expected a torch.Tensor"),
        ("simulate NumPy uint8", lambda t, p, y, d: p.simulate(np.zeros((1, 1, 32, 32), np.uint8)), "x: integer images"),
        # files
        ("load_prior missing", lambda t, p, y, d: t.load_prior("/nonexistent.safetensors"), "/nonexistent.safetensors"),
        ("load_prior text", lambda t, p, y, d: t.load_prior(str(d / "notes.txt")), "notes.txt"),
        ("load_prior bad config", lambda t, p, y, d: t.load_prior(t.DEFAULT_PRIOR, config=str(d / "notes.txt")), "notes.txt"),
        ("load_problem missing", lambda t, p, y, d: t.load_problem(str(d / "nope")), "nope"),
        ("load_images unknown set", lambda t, p, y, d: t.load_images("nope:1-2"), "nope"),
        ("load_images bad range", lambda t, p, y, d: t.load_images("fashion-mnist:test:5-2"), "5-2"),
        ("load_images out of range", lambda t, p, y, d: t.load_images("fashion-mnist:test:99999"), "99999"),
        ("load_images missing file", lambda t, p, y, d: t.load_images(str(d / "none.png")), "none.png"),
        # metrics
        ("psnr shapes differ", lambda t, p, y, d: t.psnr(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 5, 5)), "shapes differ"),
        ("ssim shapes differ", lambda t, p, y, d: t.ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 9, 9)), "shapes differ"),
    ]


CASES = argument_cases()


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        cases = CASES + solver_cases()
        metafunc.parametrize("case", cases, ids=[c[0] for c in cases])


def test_the_table_has_at_least_100_cases(tweedie):
    assert len(CASES) + len(solver_cases()) >= 100


def test_bad_input_is_one_line_naming_it(setup, case):
    tweedie, problem, y, tmp = setup
    name, call, needle = case
    t0 = time.monotonic()
    with pytest.raises(tweedie.InputError) as info:
        call(tweedie, problem, y, tmp)
    message = str(info.value)
    assert "\n" not in message, message
    assert needle in message, message
    assert time.monotonic() - t0 < 30, "refused, but only after slow work"
