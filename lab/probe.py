"""Held-out-probe estimators of the theory's latent quantities (Thm 3.8(a), Assumption 3.4, Lemma D.1).

Theorem 3.8(a)'s bias term is driven by the mean-estimation error mu_t - m_t, where mu_t is the
population mean of the value gradients *at the current weights* and m_t the running estimate; the
drift of Assumption 3.4 / Lemma D.1 is mu_t - mu_{t-1}. Neither is observable from the stream:
the batch mean of the normalized gradients, b = mean_i g_hat_i = (kappa_{t-1}/kappa_t)
Sigma^{-1/2}(xbar_t - m_{t-1}), carries the batch's own sampling noise, which does not shrink at a
fixed batch size, and the surrogate m_t - m_{t-1} = (N/kappa_t)(xbar_t - m_{t-1}) shrinks like 1/t
with no drift at all. A fixed probe of held-out requests from the same distribution, whose
gradients are taken at the current weights without touching statistics or weights, measures both:

    bias^2  = ||Sigma^{-1/2}(mu_t - m_t)||^2 / d   estimated by   <W(mu^A - m_t), W(mu^B - m_t)> / d
    drift   = ||Sigma_0^{-1/2}(mu_t - mu_s)|| / sqrt(d) / (t - s)   by the probe mean at both weights

with W = Sigma^{-1/2} and A, B the two halves of the probe (split by request): their sampling noises
are independent, so the inner product is unbiased for the squared norm, where |mu^A - m|^2 would
add the probe's own noise tr(Sigma)/n_A. In the drift, the probe is the same requests at both
weights, so its sampling noise cancels in the difference; it is measured in one fixed metric Sigma_0
(the covariance at the start), because the running estimate absorbs the spread of a drifting mean
and would make any drift look as if it faded. test_all.py validates all of this on a Gaussian
stream with known mu and Sigma: the probe recovers the truth where the b-statistic fails.
"""

import torch

from niw import NIW
from whitening import eigen, zca

F64 = torch.float64


def quarter_ratio(xs, root=False):
    """mean of the last quarter / mean of the first quarter of a series (NaN-free); root: the square
    root of that ratio for a series of squares (NaN unless the first quarter's mean is positive)."""
    xs = [x for x in xs if x == x]
    q = max(1, len(xs) // 4)
    first, last = sum(xs[:q]) / q, sum(xs[-q:]) / q
    if root:
        return (max(last, 0.0) / first) ** 0.5 if first > 0 else float("nan")
    return last / first if first else float("nan")


def bias2(mu_a, mu_b, m, eig):
    """Unbiased ||Sigma^{-1/2}(mu - m)||^2 / d from two independent estimates of mu. mu_a, mu_b, m: (d,);
    eig: whitening.eigen(Sigma). Can be negative when the true value is below the probe's noise."""
    lam, U, _ = eig
    a, b = zca(mu_a[None], m, lam, U), zca(mu_b[None], m, lam, U)  # (1, d) each
    return ((a * b).sum() / a.shape[1]).item()


def drift(mu_now, mu_before, eig, steps=1):
    """||Sigma^{-1/2}(mu_now - mu_before)|| / sqrt(d), per step over `steps` steps."""
    lam, U, _ = eig
    x = zca(mu_now[None], mu_before, lam, U)  # (1, d)
    return (x.norm() / x.shape[1] ** 0.5).item() / steps


def surrogate(m_now, m_before, cov):
    """The paper's drift surrogate (App. B.6.3): ||m_t - m_{t-1}|| / sqrt(tr Sigma_t)."""
    diag = cov.diagonal() if cov.ndim == 2 else cov
    return ((m_now - m_before).norm() / diag.sum().sqrt()).item()


def fading(s):
    """Thm 3.5's trackable regime: the drift of mu_s fades (mu + 3u/s), as does Sigma's (1 + 1/s)."""
    return 3.0 / s, 1.0 + 1.0 / s


def persistent(s):
    """Off Thm 3.5's premise: the drift does not fade (mu moves 0.1 u per step, Sigma grows 5 % per step)."""
    return 0.1 * s, 1.0 + 0.05 * s


def fading_of(a):
    """The fading drift at size a: mu_s = mu + a u / s, Sigma_s = (1 + a / (3 s)) Sigma (a = 3: fading)."""
    return lambda s: (a / s, 1.0 + a / (3 * s))


def stationary(s):
    """The premise of the virtual-samples remark (D.3/D.5): the earlier phase has the target's distribution."""
    return 0.0, 1.0


def nim_errors(d, N, T, W, drift, warm_offset, seed):
    """Relative mean and covariance errors (T, 3, 2) of three NIW trackers on one stream, target steps
    W+1..W+T: warm (W warm-up batches of the same stream first), cold (started at the boundary, the
    same target batches), and mismatched (W warm-up batches from N(mu + warm_offset u', 2 Sigma))."""
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(d, d, generator=g, dtype=F64)
    Sigma = A @ A.T / d + 0.1 * torch.eye(d, dtype=F64)
    Sigma = Sigma * d / Sigma.trace()  # mean variance 1
    mu, u, u2 = (torch.randn(d, generator=g, dtype=F64) for _ in range(3))
    u, u2, L, top = (
        u / u.norm(),
        u2 / u2.norm(),
        torch.linalg.cholesky(Sigma),
        torch.linalg.matrix_norm(Sigma, 2),
    )
    warm, cold, mis = NIW(d), NIW(d), NIW(d)
    out = []
    for s in range(1, W + T + 1):
        shift, c = drift(s)
        mu_s = mu + shift * u
        x = mu_s + c**0.5 * torch.randn(N, d, generator=g, dtype=F64) @ L.T  # (N, d)
        warm.update(x)
        if s <= W:
            mis.update(
                mu
                + warm_offset * u2 * d**0.5
                + (2 * c) ** 0.5 * torch.randn(N, d, generator=g, dtype=F64) @ L.T
            )
            continue
        cold.update(x)
        mis.update(x)
        out.append(
            [
                [
                    ((t.mean - mu_s).norm() / (c * d) ** 0.5).item(),
                    (torch.linalg.matrix_norm(t.covariance - c * Sigma, 2) / (c * top)).item(),
                ]
                for t in (warm, cold, mis)
            ]
        )
    return torch.tensor(out, dtype=F64)  # (T, tracker, 2)


if __name__ == "__main__":
    # bias2 is unbiased: two independent noisy estimates of mu give ||Sigma^{-1/2}(mu - m)||^2 / d on
    # average, where the squared norm of one noisy estimate overshoots by its noise
    g = torch.Generator().manual_seed(0)
    d, n = 16, 20
    A = torch.randn(d, d, generator=g, dtype=F64)
    Sigma = A @ A.T / d + 0.1 * torch.eye(d, dtype=F64)
    eig, L = eigen(Sigma), torch.linalg.cholesky(Sigma)
    mu, m = torch.randn(d, generator=g, dtype=F64), torch.zeros(d, dtype=F64)
    noisy = lambda: mu + (torch.randn(n, d, generator=g, dtype=F64) @ L.T).mean(0)  # noqa: E731
    two = [bias2(noisy(), noisy(), m, eig) for _ in range(4000)]
    one = [bias2(x, x, m, eig) for x in (noisy() for _ in range(4000))]
    print(
        f"true bias^2 {bias2(mu, mu, m, eig):.4f}; probe (two halves) {sum(two) / len(two):.4f}; "
        f"one noisy estimate squared {sum(one) / len(one):.4f} (+ its noise 1/n = {1 / n:.4f})"
    )
