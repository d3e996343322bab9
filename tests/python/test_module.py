"""The Python module `tweedie` (issue 18, item 1): the same estimate as the CLI for the same
seed, a Python denoiser as the prior of every solver (exactly the Gaussian posterior mean where
the answer is closed form), one-line ValueErrors for bad options, problems, priors and metrics.
numpy and the closed forms are the oracles."""
import inspect
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import PYTHON_DIR, GaussianDenoiser


def linear_ve_sigmas():
    """sigma_t = sqrt((1 - abar_t)/abar_t) of the linear 1000-step schedule (guided-diffusion)."""
    betas = np.linspace(1e-4, 0.02, 1000, dtype=np.float64)
    abar = np.cumprod(1 - betas)
    return np.sqrt((1 - abar) / abar)


def images(n, shape=(1, 32, 32), seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn((n, *shape), generator=g) * 0.5).clamp(-1, 1)


# ---- Python and the CLI agree ---------------------------------------------------------------------


def test_python_and_cli_give_the_same_estimate_for_the_same_seed(tweedie, tweedie_bin, tmp_path):
    # Inline problem on both sides: the same specs and seed build the same A and y, and the same
    # solver seed drives Diff-OneBit's stochastic steps (zeta > 0) with the shipped prior.
    x = images(2)
    np.save(tmp_path / "x.npy", x.numpy())
    op, channel, seed = "gaussian:m=256", "sign:sigma=0.3", 7
    settings = {"steps": 3, "inner_steps": 5, "zeta": 0.5}
    out = tmp_path / "cli"
    cmd = [tweedie_bin, "solve", "--input", str(tmp_path / "x.npy"), "--op", op, "--channel", channel,
           "--method", "diff-onebit", "--seed", str(seed), "--threads", "2", "--quiet", "--classifier", "none",
           "-o", str(out)]
    for k, v in settings.items():
        cmd += ["--set", f"{k}={v}"]
    subprocess.run(cmd, check=True, capture_output=True)
    cli = np.load(out / "estimate.npy")

    problem = tweedie.Problem(op, channel, shape=(1, 32, 32), seed=seed)
    y = problem.simulate(x)
    x_hat, cost = tweedie.solve("diff-onebit", problem, y, seed=seed, **settings)
    assert cost["nfe"] == 3 and cost["likelihood_grads"] == 15
    assert x_hat.shape == (2, 1, 32, 32)
    np.testing.assert_array_equal(x_hat.numpy(), cli)
    # another seed gives another estimate (the comparison can fail)
    other, _ = tweedie.solve("diff-onebit", problem, y, seed=seed + 1, **settings)
    assert not torch.equal(other, x_hat)


def test_samples_give_the_clis_draws_and_exact_posterior_draws(tweedie, tweedie_bin, tmp_path):
    # solve(..., samples=K) is `tweedie solve --samples K`, draw for draw; on the mixture prior the
    # exact solver's draws scatter around its posterior mean (output=mean) with a nonzero spread.
    source = os.environ.get("TWEEDIE_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
    gmm = os.path.join(source, "models", "fmnist-gmm", "gmm.safetensors")
    x = tweedie.load_images("fashion-mnist:test:0-2")
    np.save(tmp_path / "x.npy", x.numpy())
    op, channel = "random-mask:ratio=0.6", "gaussian:sigma=0.1"
    out = tmp_path / "cli"
    subprocess.run([tweedie_bin, "solve", "--input", str(tmp_path / "x.npy"), "--op", op, "--channel", channel,
                    "--prior", "gmm:" + gmm, "--method", "exact", "--samples", "5", "--seed", "4", "--threads", "2",
                    "--quiet", "-o", str(out)], check=True, capture_output=True)
    problem = tweedie.Problem(op, channel, shape=(1, 32, 32), seed=4)
    y = problem.simulate(x)
    prior = tweedie.load_prior("gmm:" + gmm)
    r = tweedie.solve("exact", problem, y, prior=prior, seed=4, samples=5)
    assert r.samples.shape == (3, 5, 1, 32, 32) and r.cost["nfe"] == 0
    np.testing.assert_array_equal(r.samples.numpy(), np.load(out / "samples.npy"))
    torch.testing.assert_close(r.mean, r.samples.mean(1))
    torch.testing.assert_close(r.std, r.samples.std(1))
    assert torch.equal(r.estimate, r.mean)
    exact_mean = tweedie.solve("exact", problem, y, prior=prior, output="mean").estimate
    assert (r.std.mean() > 0.02) and ((r.mean - exact_mean).abs().mean() < r.std.mean())
    assert tweedie.solve("exact", problem, y, prior=prior).samples is None
    with pytest.raises(ValueError, match="samples must be >= 0"):
        tweedie.solve("exact", problem, y, prior=prior, samples=-1)


def test_a_problem_written_by_the_cli_loads_with_the_same_measurements(tweedie, tweedie_bin, tmp_path):
    x = images(2, (1, 8, 8), seed=1)
    np.save(tmp_path / "x.npy", x.numpy())
    subprocess.run([tweedie_bin, "simulate", "--input", str(tmp_path / "x.npy"), "--op", "random-mask:ratio=0.5",
                    "--channel", "gaussian:sigma=0.1", "--seed", "3", "--quiet", "-o", str(tmp_path / "p")],
                   check=True, capture_output=True)
    problem, y = tweedie.load_problem(str(tmp_path / "p"))
    assert problem.shape == (1, 8, 8)
    mine = tweedie.Problem("random-mask:ratio=0.5", "gaussian:sigma=0.1", shape=(1, 8, 8), seed=3)
    assert mine.op == problem.op and mine.channel == problem.channel
    torch.testing.assert_close(mine.simulate(x), y, rtol=0, atol=0)


# ---- a Python denoiser as the prior ---------------------------------------------------------------


def test_python_gaussian_denoiser_gives_the_exact_gaussian_posterior_mean(tweedie):
    # y = x + s n (identity operator), x ~ N(mu, v): E[x | y] = mu + v/(v + s^2) (y - mu), which is
    # D(y, s). SIM-DMS started at t* with x_t* = sqrt(abar_t*) y (C'_s = N, no scale probes) and one
    # DDIM step returns Tweedie's x0 at sigma_t* = s: the posterior mean, when s = sigma_t*.
    mu, v, t_star = 0.1, 0.25, 200
    s = float(linear_ve_sigmas()[t_star])
    problem = tweedie.Problem("identity", f"gaussian:sigma={s!r}", shape=(1, 8, 8), seed=3)
    g = torch.Generator().manual_seed(5)
    x = mu + v**0.5 * torch.randn((4, 1, 8, 8), generator=g)
    y = problem.simulate(x)
    denoiser = GaussianDenoiser(mu, v)
    x_hat, cost = tweedie.solve("sim-dms", problem, y, prior=denoiser, seed=0, t_star=t_star, sampling_steps=1,
                                c_s_prime=64, scale_probes=0, clip_denoised=False)
    want = mu + v / (v + s * s) * (y.double() - mu)
    assert cost["nfe"] == 1 and denoiser.calls == 1
    np.testing.assert_allclose(x_hat.double().numpy(), want.numpy(), rtol=0, atol=2e-6)
    # the posterior mean is neither the measurement nor the prior mean
    assert (want - y).abs().max() > 0.2 and (want - mu).abs().max() > 0.2


def test_python_denoiser_is_the_prior_of_every_solver(tweedie):
    # Every registered solver that takes a prior runs its examples on a Python denoiser; DPS
    # differentiates through it (network_grads > 0).
    problem = tweedie.Problem("gaussian:m=48", "sign:sigma=0.3", shape=(1, 8, 8), seed=3)
    y = problem.simulate(images(2, (1, 8, 8), seed=11))
    prior = tweedie.Prior(GaussianDenoiser(0.0, 0.25))
    ran = set()
    for name, entry in tweedie.solvers().items():
        if not entry["uses_prior"] or entry["reference"]:  # exact: a mixture prior only
            continue
        for example in entry["examples"]:
            method, _, args = example.partition(":")
            options = dict(kv.split("=", 1) for kv in args.split(",") if kv)
            before = prior.nfe
            result = tweedie.solve(method, problem, y, prior=prior, seed=1, **options)
            assert result.estimate.shape == (2, 1, 8, 8), example
            assert torch.isfinite(result.estimate).all(), example
            assert result.cost["nfe"] == prior.nfe - before > 0, example
            if method == "dps":
                assert result.cost["network_grads"] > 0
            ran.add(name)
    assert {"diff-onebit", "sim-dmis", "dps", "diffpir", "daps", "qcs-sgm", "ddrm", "ddnm"} <= ran


def test_prior_denoise_and_eps_follow_the_vp_ve_relation(tweedie):
    # D(x, sigma_t) = x - sigma_t eps(x / sqrt(1 + sigma_t^2), t) at integer timesteps, for the
    # shipped network and for a Python denoiser (whose eps is built from D).
    sig = linear_ve_sigmas()
    x = images(2, seed=2) + 0.3 * images(2, seed=3)
    for prior in (tweedie.load_prior(), tweedie.Prior(GaussianDenoiser(0.0, 0.25))):
        for t in (10, 500):
            s = float(sig[t])
            d = prior.denoise(x, s)
            e = prior.eps(x / (1 + s * s) ** 0.5, t)
            torch.testing.assert_close(d, x - s * e, rtol=1e-4, atol=1e-4)
    assert tweedie.load_prior().shape == (1, 32, 32)
    gaussian = tweedie.Prior(GaussianDenoiser(0.0, 0.25))
    torch.testing.assert_close(gaussian.denoise(x, 0.5), 0.25 / (0.25 + 0.25) * x)


def test_exceptions_of_a_python_denoiser_arrive_unchanged(tweedie):
    problem = tweedie.Problem("gaussian:m=48", "sign:sigma=0.3", shape=(1, 8, 8), seed=3)
    y = problem.simulate(images(1, (1, 8, 8)))

    def broken(x, sigma):
        raise KeyError("my model failed")

    with pytest.raises(KeyError, match="my model failed"):
        tweedie.solve("dps", problem, y, prior=broken, steps=3)
    with pytest.raises(ValueError, match=r"denoiser: returned x0 of shape \[3\]"):
        tweedie.solve("dps", problem, y, prior=lambda x, s: torch.zeros(3), steps=3)


def test_callback_sees_every_step_and_can_stop(tweedie):
    problem = tweedie.Problem("gaussian:m=48", "sign:sigma=0.3", shape=(1, 8, 8), seed=3)
    y = problem.simulate(images(1, (1, 8, 8)))
    seen = []

    def callback(info, x0):
        seen.append((info["step"], info["num_steps"], None if x0 is None else tuple(x0.shape)))
        return info["step"] < 2

    r = tweedie.solve("diff-onebit", problem, y, prior=GaussianDenoiser(0.0, 0.25), callback=callback,
                      steps=5, inner_steps=2)
    assert r.stopped_early and r.steps == 2
    assert seen == [(1, 5, (1, 1, 8, 8)), (2, 5, (1, 1, 8, 8))]


def test_callback_gets_the_hqs_state_and_it_is_the_next_steps_input(tweedie):
    # info["state"] is x_t' after each step but the last: at zeta = 0 (and eps = corrected) it is
    # sqrt(ab') x0' + sqrt(1 - ab') eps~ with eps~ = (x_t - sqrt(ab) x0')/sqrt(1 - ab), so the
    # state two steps on is determined by the states and estimates reported.
    problem = tweedie.Problem("gaussian:m=48", "sign:sigma=0.3", shape=(1, 8, 8), seed=3)
    y = problem.simulate(images(1, (1, 8, 8)))
    states, x0s = [], []

    def callback(info, x0):
        states.append(info.get("state"))
        x0s.append(x0.clone())

    tweedie.solve("diff-onebit", problem, y, prior=GaussianDenoiser(0.0, 0.25), callback=callback, steps=5,
                  inner_steps=2)
    assert all(s is not None and tuple(s.shape) == (1, 1, 8, 8) for s in states[:-1]) and states[-1] is None
    ab = np.cumprod(1 - np.linspace(1e-4, 0.02, 1000))[[800, 600, 400, 200, 0]]  # ddim5: t = 800, ..., 0
    for k in (1, 2):  # state after step k+1 from the state after step k and the estimate of step k+1
        eps = (states[k - 1] - ab[k] ** 0.5 * x0s[k]) / (1 - ab[k]) ** 0.5
        want = ab[k + 1] ** 0.5 * x0s[k] + (1 - ab[k + 1]) ** 0.5 * eps
        assert torch.allclose(states[k], want.float(), atol=1e-5)


# ---- errors: one line, ValueError ----------------------------------------------------------------


def one_line_value_error(excinfo):
    assert isinstance(excinfo.value, ValueError)
    message = str(excinfo.value)
    assert "\n" not in message and message
    return message


def test_bad_options_raise_value_error_with_the_one_line_message(tweedie):
    problem = tweedie.Problem("gaussian:m=48", "sign:sigma=0.3", shape=(1, 8, 8), seed=3)
    y = problem.simulate(images(1, (1, 8, 8)))
    denoiser = GaussianDenoiser(0.0, 0.25)
    with pytest.raises(ValueError) as e:
        tweedie.solve("diff-onebit", problem, y, prior=denoiser, nope=1)
    assert one_line_value_error(e).startswith("method diff-onebit: unknown parameter 'nope' (known: steps")
    with pytest.raises(tweedie.InputError) as e:
        tweedie.solve("diff-onebit", problem, y, prior=denoiser, steps=0)
    assert one_line_value_error(e) == "method diff-onebit: steps must be at least 1, got 0"
    with pytest.raises(ValueError) as e:
        tweedie.solve("no-such-method", problem, y, prior=denoiser)
    assert one_line_value_error(e).startswith("unknown method 'no-such-method' (known: diff-onebit, ")
    with pytest.raises(ValueError) as e:
        tweedie.solve("dps", problem, y, prior=denoiser, zeta=[1])
    assert one_line_value_error(e) == "option zeta: expected a number, bool or string, got list"
    assert denoiser.calls == 0, "options are checked before the solver runs"


def test_bad_problems_priors_and_tensors_raise_value_error(tweedie):
    with pytest.raises(ValueError) as e:
        tweedie.Problem("gaussian:m=48,bogus=1", "sign:sigma=0.3", shape=(1, 8, 8))
    assert "bogus" in one_line_value_error(e)
    problem = tweedie.Problem("gaussian:m=48", "sign:sigma=0.3", shape=(1, 8, 8), seed=3)
    with pytest.raises(ValueError) as e:
        problem.apply(torch.zeros(2, 1, 4, 4))
    one_line_value_error(e)
    with pytest.raises(ValueError) as e:
        tweedie.solve("dps", problem, torch.zeros(1, 48), prior=GaussianDenoiser(0.0, 0.25))  # 1-bit y must be ±1
    one_line_value_error(e)
    y = problem.simulate(images(1, (1, 8, 8)))
    with pytest.raises(ValueError) as e:
        tweedie.solve("dps", problem, y)  # the shipped prior makes 1x32x32 items
    assert "[1, 8, 8]" in one_line_value_error(e)
    with pytest.raises(ValueError) as e:
        tweedie.load_prior("/nonexistent/model.safetensors")
    assert "/nonexistent/model.safetensors" in one_line_value_error(e)


# ---- problems, metrics, discovery ------------------------------------------------------------------


def test_problem_operator_adjoint_and_nll(tweedie):
    sigma = 0.2
    problem = tweedie.Problem("gaussian:m=40", f"gaussian:sigma={sigma}", shape=(1, 8, 8), seed=4)
    assert problem.y_shape == (40,) and problem.linear
    x, u = images(3, (1, 8, 8), seed=1), torch.randn(3, 40, dtype=torch.float32)
    lhs = (problem.apply(x).double() * u.double()).sum(1)
    rhs = (x.double() * problem.adjoint(u).double()).flatten(1).sum(1)
    torch.testing.assert_close(lhs, rhs, rtol=1e-5, atol=1e-5)
    y = problem.simulate(x)
    torch.testing.assert_close(problem.simulate(x), y, rtol=0, atol=0)  # the noise seed is the problem's
    xr = x.clone().requires_grad_(True)
    nll = problem.nll(xr, y)
    r = (problem.apply(x) - y).double()
    want = (r**2).sum(1) / (2 * sigma**2) + 40 * 0.5 * np.log(2 * np.pi * sigma**2)
    torch.testing.assert_close(nll.double(), want, rtol=1e-5, atol=1e-4)
    nll.sum().backward()
    torch.testing.assert_close(xr.grad, problem.adjoint(problem.apply(x) - y) / sigma**2, rtol=1e-4, atol=1e-4)
    assert problem.to_json()["operator"]["spec"] == problem.op


def test_metrics_match_numpy(tweedie):
    a, b = images(3, seed=1), images(3, seed=2)
    mse = ((a.double() - b.double()) ** 2).flatten(1).mean(1)
    torch.testing.assert_close(tweedie.psnr(a, b), 10 * torch.log10(4 / mse))
    torch.testing.assert_close(tweedie.ssim(a, a), torch.ones(3, dtype=torch.float64))
    assert (tweedie.ssim(a, b) < 0.9).all()
    m = tweedie.metrics(a, b)
    assert m["count"] == 3 and abs(m["mean"]["psnr"] - tweedie.psnr(a, b).mean().item()) < 1e-9


def test_solvers_show_every_option_with_its_default_and_everything_has_a_docstring(tweedie):
    table = tweedie.solvers()
    assert {"diff-onebit", "sim-dmis", "dps", "ddrm", "self-diffusion"} <= set(table)
    assert table["diff-onebit"]["options"]["steps"] == {"default": "20", "help": "K outer steps = NFE (Table I: 20)"}
    assert table["ddrm"]["options"]["sigma"]["default"] == "channel"  # the channel's noise σ
    assert table["dip"]["uses_prior"] is False and table["dps"]["uses_prior"] is True
    assert "gaussian" in tweedie.operators() and "sign" in tweedie.channels()
    public = [getattr(tweedie, n) for n in dir(tweedie) if not n.startswith("_")]
    for obj in public:
        if inspect.isclass(obj):
            members = [getattr(obj, n) for n in vars(obj) if not n.startswith("_")]
            for member in [obj, *members]:
                assert (getattr(member, "__doc__", None) or "").strip(), f"{obj.__name__}: {member}"
        elif callable(obj):
            assert (obj.__doc__ or "").strip(), obj
    assert os.path.exists(tweedie.DEFAULT_PRIOR)


def test_priors_by_name_are_listed_and_load(tweedie):
    table = tweedie.priors()
    assert table["gaussian"]["options"]["var"]["default"] == "0.25"
    prior = tweedie.load_prior("gaussian:var=0.5,size=8")
    assert prior.shape == (1, 8, 8)
    x = torch.randn(2, 1, 8, 8)
    assert torch.allclose(prior.denoise(x, 1.0), x * (0.5 / 1.5), atol=1e-5)


def test_type_stubs_cover_every_public_name(tweedie):
    import ast

    stub = os.path.join(os.path.dirname(tweedie.__file__), "__init__.pyi")
    with open(stub) as f:
        tree = ast.parse(f.read())
    names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    names |= {t.id for n in tree.body if isinstance(n, ast.AnnAssign) for t in [n.target]}
    public = {n for n in dir(tweedie) if not n.startswith("_") and n != "torch"} | {"__version__"}
    assert public <= names, public - names
    for cls in ("Prior", "Problem", "SolveResult"):
        body = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls).body
        members = {n.name for n in body if isinstance(n, ast.FunctionDef)}
        members |= {n.target.id for n in body if isinstance(n, ast.AnnAssign)}
        real = {n for n in vars(getattr(tweedie, cls)) if not n.startswith("_")}
        assert real <= members, (cls, real - members)


def test_ctrl_c_stops_a_solve_with_the_shipped_prior_within_a_second(tweedie, tmp_path):
    # issue 29 item 3: while the GIL is released the library polls Python's signal handlers at
    # every network evaluation (core/interrupt.h), so SIGINT raises KeyboardInterrupt out of solve()
    import signal
    import time
    script = tmp_path / "long_solve.py"
    script.write_text(
        "import sys, time, torch\n"
        f"sys.path.insert(0, {str(PYTHON_DIR)!r})\n"
        "import tweedie\n"
        "torch.set_num_threads(1)\n"
        "prior = tweedie.load_prior()\n"
        "problem = tweedie.Problem('sr-avg:factor=2', 'gaussian:sigma=0.05', shape=(1, 32, 32))\n"
        "y = problem.simulate(torch.zeros(2, 1, 32, 32))\n"
        "print('solving', flush=True)\n"
        "try:\n"
        "    tweedie.solve('dps', problem, y, prior=prior, steps=1000)\n"
        "    print('finished')\n"
        "except KeyboardInterrupt:\n"
        "    print('KeyboardInterrupt')\n")
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "solving", p.stderr.read()
    time.sleep(1.0)  # well inside the solve (1000 network evaluations with gradients)
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    elapsed = time.monotonic() - t0
    assert out.strip() == "KeyboardInterrupt", (out, err)
    assert p.returncode == 0, err
    assert elapsed < 1.0


def test_solve_keeps_a_prior_loaded_by_path_and_reloads_it_when_the_file_changes(tweedie, tmp_path):
    # issue 29 item 4: prior=None (or a path) no longer reloads the prior on every call
    import shutil
    tweedie.clear_prior_cache()
    assert tweedie.cached_priors() == []
    problem = tweedie.Problem("sr-avg:factor=2", "gaussian:sigma=0.05", shape=(1, 32, 32))
    y = problem.simulate(images(1))
    a, _ = tweedie.solve("ddrm", problem, y, steps=3)
    assert tweedie.cached_priors() == [tweedie.DEFAULT_PRIOR + " on cpu"]
    b, _ = tweedie.solve("ddrm", problem, y, steps=3)
    assert tweedie.cached_priors() == [tweedie.DEFAULT_PRIOR + " on cpu"]
    assert torch.equal(a, b)
    # a copy by path: its own entry; replaced on disk by other weights, it is loaded again
    models = os.path.join(tweedie.data_dir(), "models")
    mine = tmp_path / "prior"
    mine.mkdir()
    for name in ("model.safetensors", "model.json"):
        shutil.copy(os.path.join(models, "fmnist32-long", name), mine / name)
    path = str(mine / "model.safetensors")
    c, _ = tweedie.solve("ddrm", problem, y, steps=3, prior=path)
    assert torch.equal(c, a)
    assert len(tweedie.cached_priors()) == 2
    for name in ("model.safetensors", "model.json"):
        shutil.copy(os.path.join(models, "fmnist32", name), mine / name)
    d, _ = tweedie.solve("ddrm", problem, y, steps=3, prior=path)
    assert not torch.equal(d, c)
    assert len(tweedie.cached_priors()) == 2
    tweedie.clear_prior_cache()
    assert tweedie.cached_priors() == []
