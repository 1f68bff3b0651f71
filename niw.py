"""Normal-Inverse-Wishart conjugate statistics (paper §3.1, Theorem 3.2, Corollary 3.3; Eq. 1-2).

Lifelong Normalization needs the mean and covariance of the keys k and value
gradients g of every edited layer over the *whole* edit stream. Treating the
vectors of step t as Gaussian draws with an NIW prior on (mu, Sigma) gives an
exact recursion over batches (Theorem 3.2):

    kappa_t = kappa_{t-1} + N                 nu_t = nu_{t-1} + N
    m_t     = (kappa_{t-1} m_{t-1} + N xbar) / kappa_t
    Psi_t   = Psi_{t-1} + S + (kappa_{t-1} N / kappa_t)(xbar - m_{t-1})(xbar - m_{t-1})^T

with S the batch scatter matrix, and posterior expectations (Corollary 3.3)
E[mu] = m_t and E[Sigma] = Psi_t / (nu_t - d - 1).

Diagonal mode (full=False) keeps only diag(Psi): O(d) memory, and with
kappa0 = nu0 = Psi0 = 0 it *is* ULTRAEDIT's running mean / variance (Eq. 1-2).

The prior, and why it is chosen this way:
* E[Sigma] exists only while nu_t > d + 1 (d = 1 per dimension in diagonal
  mode). The official code has no prior and divides by n - d - 1 once n > d + 1,
  so its covariance -- and with it the effective step size -- jumps when full
  whitening switches on. We default to nu0 = d + 2, so E[Sigma] = Psi_t/(n + 1)
  is defined from the first vector and changes smoothly with n. If a user
  picks nu0 <= d + 1, `covariance` raises until enough vectors have arrived.
* Psi0 = eps * s0^2 * I (the paper's footnote: Psi0 = eps I) keeps E[Sigma]
  positive definite even when the first batch has fewer vectors than
  dimensions. s0^2 is the *first batch's* mean per-dimension variance: the
  prior must be scale-free, because value gradients are ~1e-4 per element on
  SmolLM2 and differ by orders of magnitude across models and layers; an
  absolute Psi0 = I would swamp them, shrink the whitened gradient to ~0 and
  silently switch editing off. With this choice c*x yields c*m, c^2*Psi, and
  the same whitened outputs, from the first batch on. eps is a count of
  "virtual" isotropic samples; eps = 1 is one such sample.
"""

import torch


class NIW:
    """stores the NIW posterior (kappa, nu, m, Psi) of d-dimensional vectors, in float64"""

    def __init__(self, dim, kappa0=1.0, nu0=None, psi0=1.0, m0=None, full=True, device=None):
        self.dim, self.full = dim, full
        d_eff = dim if full else 1  # the "d" of Cor. 3.3 for one dimension
        self.d_eff = d_eff
        self.kappa0 = float(kappa0)
        self.nu0 = float(d_eff + 2 if nu0 is None else nu0)
        self.eps = float(psi0)  # Psi0 = eps * s0^2 * I, s0 set by the first batch
        self.kappa, self.nu, self.n = self.kappa0, self.nu0, 0
        self.m = (
            torch.zeros(dim, dtype=torch.float64, device=device)
            if m0 is None
            else torch.as_tensor(m0, dtype=torch.float64, device=device).clone()
        )
        shape = (dim, dim) if full else (dim,)
        self.Psi = torch.zeros(shape, dtype=torch.float64, device=device)
        self.s0 = None  # prior scale, fixed at the first update

    def update(self, x):
        """Theorem 3.2 with a batch x of shape (N, d). Builds new tensors instead of
        writing in place, so an earlier state_dict() stays a valid snapshot."""
        x = x.detach().to(torch.float64)  # (N, d)
        N = x.shape[0]
        if x.ndim != 2 or x.shape[1] != self.dim or N < 1:
            raise ValueError(f"NIW.update expects shape (N>=1, {self.dim}), got {tuple(x.shape)}")
        xbar = x.mean(0)  # (d,)
        xc = x - xbar  # (N, d)
        if self.s0 is None:
            # scale of the data itself (second moment about the prior mean when N = 1)
            s0 = (xc.pow(2).mean() if N > 1 else (x - self.m).pow(2).mean()).item()
            self.s0 = s0 if s0 > 0 else 1.0
            prior = self.eps * self.s0
            self.Psi = self.Psi + (
                prior * torch.eye(self.dim, dtype=torch.float64, device=x.device)
                if self.full
                else prior
            )
        kappa_new = self.kappa + N
        dm = xbar - self.m  # (d,)
        w = self.kappa * N / kappa_new
        if self.full:
            S = xc.T @ xc  # (d, d) batch scatter
            self.Psi = self.Psi + S + w * torch.outer(dm, dm)
        else:
            self.Psi = self.Psi + xc.pow(2).sum(0) + w * dm.pow(2)
        self.m = (self.kappa * self.m + N * xbar) / kappa_new
        self.kappa, self.nu, self.n = kappa_new, self.nu + N, self.n + N

    @property
    def mean(self):
        """E[mu] = m_t (Corollary 3.3)."""
        return self.m

    @property
    def covariance(self):
        """E[Sigma] = Psi_t / (nu_t - d - 1) (Corollary 3.3); (d, d), or (d,) in diagonal mode."""
        dof = self.nu - self.d_eff - 1
        if dof <= 0:
            raise ValueError(
                f"E[Sigma] is infinite while nu_t = {self.nu:g} <= d + 1 = {self.d_eff + 1}; "
                "use the default nu0 = d + 2 or feed more vectors"
            )
        return self.Psi / dof

    @property
    def variance(self):
        """Per-dimension E[Sigma_jj], shape (d,)."""
        cov = self.covariance
        return cov.diagonal() if self.full else cov

    def state_dict(self):
        return {
            "dim": self.dim,
            "full": self.full,
            "kappa0": self.kappa0,
            "nu0": self.nu0,
            "eps": self.eps,
            "kappa": self.kappa,
            "nu": self.nu,
            "n": self.n,
            "m": self.m,
            "Psi": self.Psi,
            "s0": self.s0,
        }

    def load_state_dict(self, sd):
        if sd["dim"] != self.dim or sd["full"] != self.full:
            raise ValueError(
                f"NIW state is for dim={sd['dim']}, full={sd['full']}; "
                f"this tracker has dim={self.dim}, full={self.full}"
            )
        for k in ("kappa0", "nu0", "eps", "kappa", "nu", "n", "s0"):
            setattr(self, k, sd[k])
        self.m = sd["m"].to(torch.float64).clone()
        self.Psi = sd["Psi"].to(torch.float64).clone()


if __name__ == "__main__":
    torch.manual_seed(0)
    d = 8
    A = torch.randn(d, d, dtype=torch.float64)
    Sigma = A @ A.T / d + 0.1 * torch.eye(d, dtype=torch.float64)
    mu = torch.randn(d, dtype=torch.float64)
    L = torch.linalg.cholesky(Sigma)
    niw = NIW(d)
    for t in range(1, 201):
        niw.update(mu + torch.randn(50, d, dtype=torch.float64) @ L.T)
        if t in (1, 10, 200):
            err_m = (niw.mean - mu).norm().item()
            err_S = torch.linalg.matrix_norm(niw.covariance - Sigma, 2).item()
            print(
                f"after {niw.n:6d} vectors: |m - mu| = {err_m:.4f}   ||E[Sigma] - Sigma||_2 = {err_S:.4f}"
            )
