"""Your own forward model from Python (issue 29 item 1): tweedie.Operator and tweedie.Channel
subclasses used by every solver as the built-in parts are, checked against those built-in parts
bit for bit, and refused in one line where they claim what they do not do."""
import os

import pytest
import torch

from conftest import GaussianDenoiser, SOURCE_DIR

F = torch.nn.functional
SHAPE = (1, 32, 32)


def block_average_matrix(length, k):
    """The 1-D k-block average as tweedie's resize_matrix builds it: float64, then stored as float32."""
    w = torch.zeros(length // k, length, dtype=torch.float64)
    for j in range(length // k):
        w[j, j * k:(j + 1) * k] = 1.0 / k
    return w.float()


def make_box2(tweedie, with_svd=True, with_adjoint=True):
    """2x2 block average, the built-in sr-avg:factor=2 written in Python; its SVD view repeats the
    library's separable one (op/svd.cpp) operation for operation, so results can be compared bit for bit."""

    class Box2(tweedie.Operator):
        def apply(self, x):
            return F.avg_pool2d(x, 2)

    if with_adjoint:
        Box2.adjoint = lambda self, y: y.repeat_interleave(2, 2).repeat_interleave(2, 3) / 4.0

    if with_svd:
        wh = block_average_matrix(SHAPE[1], 2)
        u, s, vt = torch.linalg.svd(wh.double(), full_matrices=True)
        uh, vh = u.float(), vt.t().contiguous().float()
        s_all = torch.outer(s, s).flatten().repeat(SHAPE[0]).float()
        C, H, W, h, w = SHAPE[0], SHAPE[1], SHAPE[2], SHAPE[1] // 2, SHAPE[2] // 2
        ii = torch.arange(H).view(1, H, 1).expand(C, H, W)
        jj = torch.arange(W).view(1, 1, W).expand(C, H, W)
        kept = ((ii < h) & (jj < w)).flatten()
        every = torch.arange(C * H * W)
        perm = torch.cat([every[kept], every[~kept]])
        inv = torch.empty_like(perm).scatter_(0, perm, every)

        Box2.singular_values = lambda self: s_all
        Box2.Vt = lambda self, x: vh.t().matmul(x.reshape(-1, C, H, W)).matmul(vh).flatten(1).index_select(1, perm)
        Box2.V = lambda self, c: vh.matmul(c.index_select(1, inv).reshape(-1, C, H, W)).matmul(vh.t())
        Box2.Ut = lambda self, y: uh.t().matmul(y.reshape(-1, C, h, w)).matmul(uh).flatten(1)
        Box2.U = lambda self, c: uh.matmul(c.reshape(-1, C, h, w)).matmul(uh.t())
    return Box2()


def example_options(spec):
    """'dps:steps=3,likelihood=linear' -> ('dps', {'steps': '3', 'likelihood': 'linear'})."""
    name, _, rest = spec.partition(":")
    return name, dict(kv.split("=", 1) for kv in rest.split(",") if kv)


@pytest.fixture(scope="module")
def images(tweedie):
    return tweedie.load_images("fashion-mnist:test:0-1")


@pytest.fixture(scope="module")
def gmm(tweedie):
    path = os.path.join(SOURCE_DIR, "models", "fmnist-gmm", "gmm.safetensors")
    return tweedie.load_prior("gmm:" + path)


def test_python_box2_equals_builtin_for_every_solver(tweedie, images, gmm):
    """Every registered solver, with each of its registry examples, gives bit-identical estimates on
    the Python 2x2 block average and on sr-avg:factor=2 (the same measurements)."""
    builtin = tweedie.Problem("sr-avg:factor=2", shape=SHAPE, seed=3)
    own = tweedie.Problem(make_box2(tweedie), shape=SHAPE, seed=3)
    y = builtin.simulate(images)
    assert torch.equal(own.simulate(images), y)
    assert torch.equal(own.adjoint(y), builtin.adjoint(y))
    ran = []
    for name, entry in tweedie.solvers().items():
        for example in entry["examples"]:
            method, options = example_options(example)
            prior = gmm if entry["reference"] else None
            a = tweedie.solve(method, builtin, y, prior=prior, seed=5, **options).estimate
            b = tweedie.solve(method, own, y, prior=prior, seed=5, **options).estimate
            assert torch.isfinite(a).all(), example
            assert torch.equal(a, b), f"{example}: differs by {(a - b).abs().max().item():.3g}"
            ran.append(example)
    assert len(ran) >= 25  # every solver's examples, not an empty registry


def test_adjoint_and_svd_are_optional_and_derived_or_refused(tweedie, images):
    builtin = tweedie.Problem("sr-avg:factor=2", shape=SHAPE, seed=3)
    bare = tweedie.Problem(make_box2(tweedie, with_svd=False, with_adjoint=False), shape=SHAPE, seed=3)
    y = builtin.simulate(images)
    # the adjoint of a linear operator without one comes from autograd: exact for avg_pool2d
    assert torch.allclose(bare.adjoint(y), builtin.adjoint(y), rtol=0, atol=1e-7)
    # the likelihood solvers run on it (their gradients go through the derived adjoint)
    a = tweedie.solve("dps", builtin, y, seed=1, steps=3).estimate
    b = tweedie.solve("dps", bare, y, seed=1, steps=3).estimate
    assert torch.allclose(a, b, rtol=0, atol=1e-6)  # autograd's adjoint sums in another order
    # a solver that needs the SVD view refuses in one line naming it
    for method in ("ddrm", "ddnm"):
        with pytest.raises(tweedie.InputError, match="SVD view") as e:
            tweedie.solve(method, bare, y, steps=3)
        assert "\n" not in str(e.value) and "Box2" in str(e.value)


class AbsGaussian:
    """|G x| for a fixed Gaussian G: phase retrieval from real measurements (nonlinear)."""

    def __init__(self, tweedie, m=256, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.G = torch.randn(m, 1024, generator=g) / m**0.5

        class Op(tweedie.Operator):
            linear = False

            def apply(op_self, x):
                return (x.flatten(1) @ self.G.t()).abs()

        self.op = Op()


def test_nonlinear_python_operator_runs_with_the_gradient_solvers(tweedie, images):
    """|G x| from Python: DPS, DAPS, RED-diff, DPnP and the MO methods run on it through autograd, and
    give the estimate they give on the same map split into a linear Python operator G x and the
    channel's |.| link (the gradients are the same chain rule, so only rounding may differ). Each
    method reads the channel (likelihood=channel): with likelihood=linear the split would drop |.|."""
    own = AbsGaussian(tweedie)
    problem = tweedie.Problem(own.op, "gaussian:sigma=0.05", shape=SHAPE, seed=2)
    assert not problem.linear and problem.y_shape == (256,)
    y = problem.simulate(images)
    assert y.shape == (2, 256)

    class Linear(tweedie.Operator):
        def apply(self, x):
            return x.flatten(1) @ own.G.t()

    split = tweedie.Problem(Linear(), "link:f=abs,sigma=0.05", shape=SHAPE, seed=2)
    for method, options in [("dps", {"steps": 4}), ("daps", {"annealing_steps": 3, "ode_steps": 2, "langevin_steps": 3}),
                            ("red-diff", {"steps": 4, "init": "zeros", "likelihood": "channel"}),
                            ("dpnp", {"k_start": 1, "k": 1, "pcs_steps": 3, "likelihood": "channel"}),
                            ("dps-mo", {"steps": 4, "mo_steps": 2}),
                            ("red-diff-mo", {"steps": 4, "init": "zeros", "mo_steps": 2, "likelihood": "channel"})]:
        a = tweedie.solve(method, problem, y, seed=4, **options).estimate
        b = tweedie.solve(method, split, y, seed=4, **options).estimate
        assert torch.isfinite(a).all(), method
        assert torch.allclose(a, b, rtol=0, atol=1e-4), f"{method}: {(a - b).abs().max().item():.3g}"
    # a linear-only method refuses it in one line
    with pytest.raises(tweedie.InputError, match="nonlinear|linear"):
        problem.adjoint(y)


def test_python_operator_chains_with_builtin_specs(tweedie, images):
    chained = tweedie.Problem([make_box2(tweedie), "hdr:alpha=2"], shape=SHAPE, seed=1)
    builtin = tweedie.Problem("sr-avg:factor=2|hdr:alpha=2", shape=SHAPE, seed=1)
    assert chained.op == "python:Box2|hdr:alpha=2" and chained.y_shape == builtin.y_shape
    y = builtin.simulate(images)
    assert torch.equal(chained.simulate(images), y)
    a = tweedie.solve("dps", builtin, y, seed=2, steps=3).estimate
    b = tweedie.solve("dps", chained, y, seed=2, steps=3).estimate
    assert torch.equal(a, b)
    # and the other way round: a built-in spec feeding a Python operator (shapes flow along the list)
    after = tweedie.Problem(["sr-avg:factor=2", make_box2(tweedie, with_svd=False)], shape=SHAPE)
    assert after.y_shape == (1, 8, 8)
    four = tweedie.Problem("sr-avg:factor=4", shape=SHAPE).apply(images)  # two 2x2 means = one 4x4 mean, up to rounding
    assert torch.allclose(after.apply(images), four, rtol=0, atol=1e-6)


def make_gaussian_channel(tweedie, sigma):
    """gaussian:sigma=s written in Python, drawing its noise as the library does (float64 on the CPU)."""

    class Gaussian(tweedie.Channel):
        noise_std = sigma

        def nll(self, z, y):
            return (y - z) ** 2 / (2 * sigma**2) + 0.5 * torch.log(torch.tensor(2 * torch.pi * sigma**2)).item()

        def simulate(self, z, generator):
            return z + sigma * torch.randn(z.shape, generator=generator, dtype=torch.float64).to(z)

        def nll_floor(self, y):
            return torch.full_like(y, 0.5 * torch.log(torch.tensor(2 * torch.pi * sigma**2)).item())

    return Gaussian()


def test_python_channel_equals_builtin_gaussian(tweedie, images):
    builtin = tweedie.Problem("sr-avg:factor=2", "gaussian:sigma=0.05", shape=SHAPE, seed=7)
    own = tweedie.Problem("sr-avg:factor=2", make_gaussian_channel(tweedie, 0.05), shape=SHAPE, seed=7)
    assert own.channel == "python:Gaussian"
    y = builtin.simulate(images)
    assert torch.equal(own.simulate(images), y)  # the same noise stream
    assert torch.allclose(own.nll(images, y), builtin.nll(images, y), rtol=1e-6)
    for method, options in [("dps", {"steps": 3}), ("ddrm", {"steps": 4}), ("diffpir", {"steps": 3, "inner_steps": 2}),
                            ("dpnp", {"k_start": 1, "k": 1, "pcs_steps": 3, "likelihood": "channel"})]:
        a = tweedie.solve(method, builtin, y, seed=3, **options).estimate
        b = tweedie.solve(method, own, y, seed=3, **options).estimate
        assert torch.allclose(a, b, rtol=0, atol=1e-5), f"{method}: {(a - b).abs().max().item():.3g}"


def test_python_channel_without_nll_floor_is_refused_where_needed(tweedie, images):
    channel = make_gaussian_channel(tweedie, 0.05)
    type(channel).nll_floor = None  # not callable: treated as absent
    del type(channel).nll_floor
    problem = tweedie.Problem("sr-avg:factor=2", channel, shape=SHAPE)
    y = problem.simulate(images)
    tweedie.solve("dps", problem, y, steps=2)  # DPS needs only nll
    with pytest.raises(tweedie.InputError, match="nll_floor"):
        tweedie.solve("dpnp", problem, y, k_start=1, k=1, pcs_steps=2, likelihood="channel")


def test_claims_are_checked_and_unused_methods_refused(tweedie):
    def refused(op, pattern, channel="gaussian:sigma=0.05"):
        with pytest.raises(tweedie.InputError, match=pattern) as e:
            tweedie.Problem(op, channel, shape=SHAPE)
        assert "\n" not in str(e.value)

    class WrongAdjoint(tweedie.Operator):
        def apply(self, x):
            return F.avg_pool2d(x, 2)

        def adjoint(self, y):
            return y.repeat_interleave(2, 2).repeat_interleave(2, 3)  # missing the 1/4

    class NotLinear(tweedie.Operator):
        def apply(self, x):
            return F.avg_pool2d(x, 2) ** 2

    class Forward(tweedie.Operator):
        def apply(self, x):
            return x

        def forward(self, x):
            return x

    class Pinv(tweedie.Operator):
        def apply(self, x):
            return x

        def pinv(self, y):
            return y

    class HalfSvd(tweedie.Operator):
        def apply(self, x):
            return x

        def singular_values(self):
            return torch.ones(1024)

    class NonlinearWithAdjoint(tweedie.Operator):
        linear = False

        def apply(self, x):
            return x.abs()

        def adjoint(self, y):
            return y

    class NoBatch(tweedie.Operator):
        def apply(self, x):
            return x[0]

    class NotATensor(tweedie.Operator):
        def apply(self, x):
            return x.numpy()

    class BadLinearFlag(tweedie.Operator):
        linear = "yes"

        def apply(self, x):
            return x

    class Scalars(tweedie.Operator):
        def apply(self, x):
            return x.sum(dim=(1, 2, 3))

    class NoApply(tweedie.Operator):
        pass

    refused(WrongAdjoint(), r"WrongAdjoint\.adjoint is not the adjoint")
    refused(NotLinear(), r"NotLinear is declared linear.*linear = False")
    refused(Forward(), r"defines forward\(\)")
    refused(Pinv(), r"defines pinv\(\)")
    refused(HalfSvd(), r"part of an SVD view \(singular_values\) but not U, Ut, V, Vt")
    refused(NonlinearWithAdjoint(), r"linear = False but defines adjoint")
    refused(NoBatch(), r"first dimension must stay the batch")
    refused(NotATensor(), r"must return a torch.Tensor")
    refused(BadLinearFlag(), r"linear must be True or False")
    refused(Scalars(), r"batch of scalars")
    refused(NoApply(), r"NoApply defines no apply")
    refused(3, r"expected a spec string, a tweedie.Operator")
    refused([], r"empty list")
    refused([["sr-avg:factor=2"]], r"nested list")
    refused(["sr-avg:factor=2", "nope"], r"op\[1\]")
    refused("sr-avg:factor=2", r"channel: expected a spec string or a tweedie.Channel", channel=object())

    class NegativeNoise(tweedie.Channel):
        noise_std = -1.0

        def nll(self, z, y):
            return (y - z) ** 2

        def simulate(self, z, generator):
            return z

    refused("sr-avg:factor=2", r"noise_std=-1", channel=NegativeNoise())
    with pytest.raises(TypeError):
        class Sub(tweedie.Problem):  # overrides of a Problem would be ignored by the solvers: refused
            pass


def test_python_errors_inside_the_model_propagate_as_themselves(tweedie, images):
    class Flaky(tweedie.Operator):
        calls = 0

        def apply(self, x):
            Flaky.calls += 1
            if Flaky.calls > 4:  # fine during Problem()'s checks, then fails inside the solve
                raise KeyError("flaky operator")
            return F.avg_pool2d(x, 2)

    problem = tweedie.Problem(Flaky(), shape=SHAPE)
    y = torch.zeros(2, 1, 16, 16)
    with pytest.raises(KeyError, match="flaky operator"):
        tweedie.solve("dps", problem, y, steps=3)

    class WrongShapeLater(tweedie.Operator):
        def apply(self, x):
            return F.avg_pool2d(x, 4) if x.requires_grad else F.avg_pool2d(x, 2)  # wrong only inside DPS

    problem = tweedie.Problem(WrongShapeLater(), shape=SHAPE)
    with pytest.raises(tweedie.InputError, match=r"WrongShapeLater\.apply: returned \[2, 1, 8, 8\]"):
        tweedie.solve("dps", problem, y, steps=2)


def test_a_denoiser_without_gradients_is_an_error_where_one_is_needed(tweedie, images):
    problem = tweedie.Problem("sr-avg:factor=2", shape=SHAPE)
    y = problem.simulate(images)
    mu, v = torch.zeros(1, *SHAPE), torch.full((1, *SHAPE), 0.3)
    smooth = GaussianDenoiser(mu, v)

    def detached(x, sigma):
        return smooth(x, sigma).detach()

    def under_no_grad(x, sigma):
        with torch.no_grad():
            return smooth(x, sigma)

    for denoiser in (detached, under_no_grad):
        with pytest.raises(tweedie.InputError, match="without autograd history"):
            tweedie.solve("dps", problem, y, prior=denoiser, steps=3)
    # solvers that never differentiate through the prior accept it
    assert torch.isfinite(tweedie.solve("ddrm", problem, y, prior=detached, steps=3).estimate).all()
    assert torch.isfinite(tweedie.solve("dps", problem, y, prior=smooth, steps=3).estimate).all()
