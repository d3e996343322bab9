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
    load_prior,
    load_problem,
    metrics,
    operators,
    psnr,
    rel_norm_error,
    solve,
    solvers,
    ssim,
)
