"""Closed-form ridge update of one edited linear layer (paper §3.3, Eq. 5-6).

Each answer token i contributes a raw key k_i (row of K, (N, d_in)) and a target
value shift v_i = -lr * ||k_hat_i||^2 * g_hat_i (row of V, (N, d_out)): a
gradient step in the normalized space, scaled by the key energy so every token
asks for the same output change per unit of its own input (Eq. 5). The update
is the ridge regression from keys to targets (Eq. 6):

    Delta = (K^T K + alpha I)^{-1} K^T V                 primal, d_in x d_in system
          = K^T (K K^T + alpha I)^{-1} V                 dual,   N x N system

The two are equal by the push-through identity (K^T K + aI) K^T = K^T (K K^T + aI).
With N ~ 100-1000 answer tokens per step and d_in = 1536 ... 16384, the dual
form is far cheaper; the official code always solves the primal one.
"""

import torch


def targets(k_hat, g_hat, lr, key_scale=True):
    """V = -lr * ||k_hat_i||^2 * g_hat_i. k_hat (N, d_in), g_hat (N, d_out) -> (N, d_out).

    key_scale=False is App. B.6.5's ablation without the hidden-state scalar: every token's factor
    ||k_hat_i||^2 is replaced by its expectation d_in (standardized keys have E||k_hat||^2 = d_in),
    so the update keeps its size at the same lr; the paper's V = -lr' g_hat is this with lr' = lr d_in."""
    scale = (
        k_hat.pow(2).sum(1, keepdim=True)
        if key_scale
        else torch.full_like(k_hat[:, :1], k_hat.shape[1])
    )
    return -lr * scale * g_hat


def ridge_dual(K, V, alpha):
    """A = (K K^T + alpha I)^{-1} V, shape (N, d_out): Delta = K^T A, so (K, A) hold a step's update in
    N (d_in + d_out) numbers instead of d_in d_out (the editor keeps them for Thm 3.8's cosines)."""
    A = K @ K.T  # (N, N)
    A.diagonal().add_(alpha)
    return torch.cholesky_solve(V, torch.linalg.cholesky(A))


def frobenius(a, b):
    """<Delta_a, Delta_b>_F in float64 of two updates, each (P, Q) with Delta = P^T Q, or (None, Delta).

    Two low-rank updates never form a (d_in, d_out) matrix: <K_a^T A_a, K_b^T A_b> =
    sum((K_a K_b^T) * (A_a A_b^T)), an (N_a, N_b) product."""
    (Pa, Qa), (Pb, Qb) = a, b
    if Pa is not None and Pb is not None:
        return ((Pa.double() @ Pb.double().T) * (Qa.double() @ Qb.double().T)).sum().item()
    return (dense(a) * dense(b)).sum().item()


def dense(factors):
    """Delta (d_in, d_out) in float64 from (P, Q), Delta = P^T Q, or (None, Delta)."""
    P, Q = factors
    return Q.double() if P is None else P.double().T @ Q.double()


def ridge_solve(K, V, alpha, method="auto"):
    """Delta = (K^T K + alpha I)^{-1} K^T V, shape (d_in, d_out), by Cholesky solves."""
    N, d_in = K.shape
    if method == "auto":
        method = "dual" if N < d_in else "primal"
    if method == "dual":
        return K.T @ ridge_dual(K, V, alpha)
    if method == "primal":
        A = K.T @ K  # (d_in, d_in)
        A.diagonal().add_(alpha)
        return torch.cholesky_solve(K.T @ V, torch.linalg.cholesky(A))
    raise ValueError(f"unknown ridge method {method!r}; use 'auto', 'primal' or 'dual'")


if __name__ == "__main__":
    import time

    torch.manual_seed(0)
    K, V = torch.randn(300, 1536, dtype=torch.float64), torch.randn(300, 576, dtype=torch.float64)
    gap = (
        (ridge_solve(K, V, 10.0, "dual") - ridge_solve(K, V, 10.0, "primal")).norm()
        / ridge_solve(K, V, 10.0, "primal").norm()
    ).item()
    print(f"SmolLM2 width, N=300, float64: |dual - primal| / |primal| = {gap:.1e}")
    # GPT-J fc_out width with 1,000 answer tokens (10 steps of 100 edits), float32 as on a GPU
    K, V = torch.randn(1000, 16384), torch.randn(1000, 4096) * 1e-3
    ridge_solve(K[:10, :100], V[:10], 10.0, "dual")  # warm the BLAS thread pool
    times = {}
    for method in ("dual", "primal"):
        t0 = time.perf_counter()
        ridge_solve(K, V, 10.0, method)
        times[method] = time.perf_counter() - t0
        print(f"GPT-J width (d_in 16384, d_out 4096, N 1000), {method:6s}: {times[method]:7.2f} s")
    print(f"dual speed-up: {times['primal'] / times['dual']:.1f}x")
