"""tweedie: diffusion-prior solvers for inverse problems, on torch tensors.

    import torch, tweedie
    problem = tweedie.Problem("gaussian:m=512", "sign:sigma=0.3", shape=(1, 32, 32), seed=0)
    y = problem.simulate(x)                       # x: [B, 1, 32, 32] in [-1, 1]
    x_hat, cost = tweedie.solve("diff-onebit", problem, y, seed=0, steps=20)
    tweedie.psnr(x_hat, x), tweedie.ssim(x_hat, x)

The prior is the shipped Fashion-MNIST one unless `prior=` names another (a path, "gmm:FILE",
a tweedie.Prior) or gives any callable denoiser(x, sigma) -> x0. tweedie.solvers() lists every
solver with its options and defaults; bad options raise ValueError (tweedie.InputError) with
the library's one-line message. See docs/python.md.
"""
import torch  # noqa: F401  (loads LibTorch and torch's Python types before the extension)

from ._core import (  # noqa: F401
    DEFAULT_PRIOR,
    InputError,
    Prior,
    Problem,
    SolveResult,
    __version__,
    cached_priors,
    channels,
    clear_prior_cache,
    cosine,
    data_dir,
    load_images,
    load_plugin,
    load_prior,
    load_problem,
    metrics,
    operators,
    plugins,
    priors,
    psnr,
    rel_norm_error,
    solve,
    solvers,
    ssim,
)


class Operator:
    """Your own forward model A, used by every solver as a built-in operator is.

    Subclass it and give Problem(op=YourOperator(...), shape=...) :

        class Box2(tweedie.Operator):
            def apply(self, x):             # x [B, *shape] -> A x [B, *out]; torch ops only
                return torch.nn.functional.avg_pool2d(x, 2)

    apply(x)        required. A x, differentiable by autograd (solvers differentiate through it),
                    on x's device and dtype. The output shape is read from one call at Problem().
    linear          class attribute, default True. Set False for a nonlinear A (|A x|, phase
                    retrieval): its Jacobians then come from autograd.
    adjoint(y)      optional, linear only: A^T y (for complex outputs Re(A^H y)). Without it the
                    adjoint is derived by autograd (the gradient of <A x, y> in x).
    singular_values(), Vt(x), V(c), Ut(y), U(c)
                    optional, linear only, all or none: the SVD view A = U diag(s) V^T that DDRM
                    and DDNM need (they refuse an operator without it). s is [M] (M = measurement
                    size), Vt(x) [B, N] with the first M coordinates paired with s, V its
                    inverse, Ut(y) [B, M], U(c) [B, *out].

    Problem() checks the claims before any solver trusts them: a linear A is additive, the
    adjoint passes <A x, y> = <x, A^T y>, the SVD view reproduces apply; each failure is a
    tweedie.InputError naming the class. Methods tweedie would not call (forward, A_adjoint,
    pinv, ...) are refused rather than ignored. An exception raised inside apply during a solve
    propagates out of solve() unchanged.
    """

    linear = True


class Channel:
    """Your own measurement channel p(y | z), z = A x, used by every solver as a built-in one is.

    nll(z, y)               required. -log p(y_i | z_i) per entry, shaped like y, differentiable
                            in z and numerically stable.
    simulate(z, generator)  required. y ~ p(y | z), shaped like z; draw every random number from
                            the torch.Generator given (a CPU generator: draw on the CPU, then
                            move), so the problem's seed fixes y.
    nll_floor(y)            optional: inf over z of nll per entry (0 for a probability,
                            log(2 pi sigma^2)/2 for Gaussian noise); DPnP with
                            likelihood=channel needs it and says so when it is missing.
    validate(y)             optional: raise to refuse an impossible measurement (y is already
                            checked finite).
    noise_std               class attribute, default 0: the sigma of Gaussian noise added to z
                            before any link, which DDRM, DDNM and DiffPIR read.
    scale                   default noise_std (or 1 when that is 0): the scale of z over which
                            p(y | z) changes.
    discrete                default False: whether y takes discrete values.
    """

    noise_std = 0.0
