"""Sigma_g at the width of the paper's 7-8B models, for results/width.py: a measured spectrum stretched to
the width, a covariance with that spectrum, and an editor's trackers seeded with it.

The spectra are the ones results/spectra.py measured on SmolLM2 and Gemma (results/spectra.json); an
eigh's speed depends on its spectrum, so a timed eigh at 4096 runs on one of them, not on noise.
Used by `python results/width.py` (results/width.json); it stores nothing itself.
"""

import json
from pathlib import Path

import torch

SPECTRA = Path(__file__).with_name("spectra.json")


def spectrum(d, which="median"):
    """Eigenvalues / lambda_max of a measured Sigma_g (results/spectra.json) stretched to d: log-linear in
    the quantile, so lambda_max / lambda_min is kept. which: the layer of median, min or max cond."""
    layers = sorted(
        (v for m in json.loads(SPECTRA.read_text()).values() for v in m.values()),
        key=lambda v: v["cond"],
    )
    v = {"min": layers[0], "median": layers[len(layers) // 2], "max": layers[-1]}[which]
    rel = torch.tensor(v["relative"], dtype=torch.float64).clamp_min(1.0 / v["cond"])
    q = torch.linspace(0, 1, d, dtype=torch.float64) * (len(rel) - 1)
    lo = q.floor().long().clamp(max=len(rel) - 2)
    t = q - lo
    return torch.exp((1 - t) * rel[lo].log() + t * rel[lo + 1].log())  # (d,) ascending


def covariance(lam, seed=0, device="cpu"):
    """U diag(lam) U^T with a random orthogonal U, float64."""
    g = torch.Generator().manual_seed(seed)
    U, _ = torch.linalg.qr(torch.randn(len(lam), len(lam), generator=g, dtype=torch.float64))
    return ((U * lam) @ U.T).to(device)


def seed_statistics(ed, cap, Sigma, rows=7000):
    """Each tracker as after `rows` vectors: key statistics from the capture, Sigma_g = Sigma scaled to the
    captured g. A statistics-only warm-up would need d_out / (answer tokens per step) steps for a
    full-rank Sigma_g (35+ at 4096); before that the prior's isotropic part deflates the eigh."""
    for n, (K, G) in cap.items():
        sk, sg = ed.stats[n]
        for t, x in ((sk, K), (sg, G)):
            t.n, t.kappa, t.nu, t.s0 = rows, t.kappa0 + rows, t.nu0 + rows, 1.0
            t.m = x.double().mean(0)
        sk.Psi = (sk.nu - 2) * K.double().var(0).clamp_min(1e-12)
        if sg.full:
            sg.Psi = (
                (sg.nu - sg.dim - 1) * Sigma * (G.double().var(0).mean() / Sigma.diagonal().mean())
            )
        else:
            sg.Psi = (sg.nu - 2) * G.double().var(0).clamp_min(1e-30)
