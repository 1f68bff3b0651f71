"""Centering, standardization and ZCA whitening (paper §3.3; Eq. 9 as Appendix C restates it; Remark D.9).

Lifelong Normalization maps keys and value gradients to a common scale before
the ridge update: keys are standardized per dimension, k_hat = (k - mu_k)/sigma_k,
and StableEdit whitens the value gradients in full, g_hat = (g - mu_g) Sigma_g^{-1/2}.

The inverse square root is the symmetric (ZCA) one, U diag(lambda^{-1/2}) U^T:
among all whitening matrices it moves vectors least, so g_hat stays as close as
possible in direction to g (Remark D.9) and a diagonal Sigma gives exactly the
standardization -- ULTRAEDIT is the diagonal special case. Eigenvalues are
floored *relative* to the largest one, so the result does not depend on the
units of g (an absolute floor of 1e-6 would dominate gradients of size 1e-4: the
official StableEdit code clamps at an absolute 1e-6; lab/official.py replicates it).
"""

import torch

# each method's normalization of g (Table 4's rows; ft: Table 1's plain fine-tuning, no statistics)
NORMALIZATION = {
    "stableedit": "full whitening",
    "ultraedit": "per-dimension standardization",
    "no_ln": "none",
    "ft": "none (a plain gradient step, no ridge)",
}
METHODS = tuple(NORMALIZATION)


def standardize(x, mean, var, floor=1e-12):
    """(x - mean) / sqrt(var) per dimension. x (N, d), mean (d,), var (d,) -> (N, d) float64."""
    var = var.to(torch.float64)
    var = var.clamp_min(floor * var.max().clamp_min(torch.finfo(torch.float64).tiny))
    return (x.to(torch.float64) - mean) / var.sqrt()


def eigen(cov, floor=1e-6, dtype=torch.float64):
    """One eigh: (eigenvalues floored at floor * lambda_max, eigenvectors, lambda_max / lambda_min
    before the floor), returned in float64. Layers that share a
    covariance (a pooled normalizer) share this one decomposition.

    dtype=torch.float32 decomposes in single precision (ROUTES): 1.8x faster on this CPU at d = 4096,
    far more on GPUs whose float64 runs at 1/32-1/64 of float32 (results/width.py, results/width.md)."""
    tiny = torch.finfo(torch.float64).tiny
    lam, U = torch.linalg.eigh(cov.to(dtype))  # ascending eigenvalues
    lam, U = lam.to(torch.float64), U.to(torch.float64)
    lam_max = lam[-1].clamp_min(tiny)
    cond = (lam_max / lam[0].clamp_min(tiny)).item()
    return lam.clamp_min(floor * lam_max), U, cond


def eigens(covs, floor=1e-6, workers=2, dtype=torch.float64):
    """[eigen(c) for c in covs], the decompositions run side by side, each on one thread.

    Why: LAPACK's symmetric eigensolver reduces to tridiagonal form with matrix-vector products
    that gain little from a second thread at d ~ 500-4000, so two single-threaded solves at once
    finish sooner than two two-threaded ones in turn (measured in results/bench.py). The intra-op
    thread count is lowered only while they run and restored after."""
    if len(covs) < 2 or workers < 2:
        return [eigen(c, floor, dtype) for c in covs]
    from concurrent.futures import ThreadPoolExecutor

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(lambda c: eigen(c, floor, dtype), covs))
    finally:
        torch.set_num_threads(threads)


# How Sigma_g is decomposed, by the width d of g and the device (measured in results/width.py):
#   float64  the default on CPU below d = ROUTE_WIDTH: at SmolLM2's d = 576 the eigh is ~7 % of a step,
#            so single precision would buy little and cost digits (results/eigh_routes.py);
#   float32  on CPU from d = ROUTE_WIDTH, and on any accelerator: at d = 4096 one float64 eigh costs as
#            much as the forward+backward of two GPT-J blocks here, and GPUs run float64 at a fraction
#            of float32 (1/64 on consumer and workstation cards).
ROUTES = ("auto", "float64", "float32")
ROUTE_WIDTH = 2048


def route(choice, dim, device):
    """The eigh dtype of a d-dimensional Sigma_g on a device: choice 'auto' resolves by the table above."""
    if choice not in ROUTES:
        raise ValueError(f"unknown eigh route {choice!r}; choose one of {', '.join(ROUTES)}")
    if choice == "auto":
        choice = (
            "float32" if dim >= ROUTE_WIDTH or torch.device(device).type != "cpu" else "float64"
        )
    return {"float64": torch.float64, "float32": torch.float32}[choice]


def zca(x, mean, lam, U):
    """(x - mean) U diag(lam^{-1/2}) U^T from an eigen() decomposition; never forms the (d, d) matrix."""
    return (((x.to(torch.float64) - mean) @ U) * lam.rsqrt()) @ U.T


if __name__ == "__main__":
    torch.manual_seed(0)
    d, n = 64, 20000
    A = torch.randn(d, d, dtype=torch.float64)
    Sigma = A @ A.T / d + 0.01 * torch.eye(d, dtype=torch.float64)
    x = torch.randn(n, d, dtype=torch.float64) @ torch.linalg.cholesky(Sigma).T + 3.0
    lam, U, cond = eigen(torch.cov(x.T))
    xw = zca(x, x.mean(0), lam, U)
    gap = torch.linalg.matrix_norm(torch.cov(xw.T) - torch.eye(d, dtype=torch.float64), 2).item()
    print(f"cond(Sigma) = {cond:.1f};  ||cov(whitened) - I||_2 = {gap:.2e}")
    D = torch.rand(d, dtype=torch.float64) + 0.5
    lam, U, _ = eigen(torch.diag(D))
    same = torch.allclose(zca(x, x.mean(0), lam, U), standardize(x, x.mean(0), D))
    print(f"ZCA with a diagonal covariance equals standardization: {same}")
