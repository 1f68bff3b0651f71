"""The routes to the whitening's eigendecomposition that results/bench.py does not time, measured on
SmolLM2's real value-gradient statistics. It prints to the terminal and stores nothing: results/speed.md
quotes none of its figures.

    python results/eigh_routes.py

Builds the default editor's 8 NIW trackers from a statistics-only warm-up of 1,000 synthetic edits
and one 100-edit step, then times, for those 8 covariances of 576 x 576: eigh one by one (two
threads), side by side (whitening.eigens), as one batched call, with UPLO='U', numpy's eigh, and
eigvalsh alone (the tridiagonal reduction's share); and says how far a float32 eigh and a float32
ZCA product move the whitened gradients (relative Frobenius error; the bound is 1e-6).
"""

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_run import seconds  # noqa: E402  (results/ is this script's folder)
from data import load  # noqa: E402
from editor import Editor  # noqa: E402
from lab.models import load_model  # noqa: E402
from lab.presets import preset_layers  # noqa: E402
from whitening import eigen, eigens, zca  # noqa: E402


def rel(a, b):
    return ((a.double() - b).norm() / b.norm()).item()


def trackers_and_gradients():
    """The default editor's Sigma_g trackers after the warm-up and one step, and that step's G."""
    model, tok, preset = load_model("smollm2-135m")
    ed = Editor(
        model, tok, preset_layers(preset, "synthetic"), lr=preset["lr"], alpha=preset["alpha"]
    )
    warm = load("synthetic", 1000, offset=5000)
    for i in range(0, len(warm), 100):  # a statistics-only warm-up
        ed.edit(warm[i : i + 100], apply=False)
    grads = ed.gradients(load("synthetic", 100))  # {layer: G (M, 576)}
    for n, G in grads.items():
        ed.stats[n][1].update(G)
    return [ed.stats[n][1] for n in grads], grads


def time_routes(covs):
    """Print the milliseconds of each eigh route over the 8 covariances."""
    B = torch.stack(covs)  # (8, 576, 576)
    print(
        f"8 covariances {tuple(B.shape[1:])}, condition numbers "
        f"{min(eigen(c)[2] for c in covs):.0f}-{max(eigen(c)[2] for c in covs):.0f}"
    )
    for name, fn in [
        ("eigh one by one (2 threads)", lambda: eigens(covs, workers=1)),
        ("eigh side by side (whitening.eigens)", lambda: eigens(covs)),
        ("eigh batched, one call", lambda: torch.linalg.eigh(B)),
        ("eigh UPLO='U' one by one", lambda: [torch.linalg.eigh(c, UPLO="U") for c in covs]),
        ("numpy.linalg.eigh one by one", lambda: [np.linalg.eigh(c.numpy()) for c in covs]),
        ("eigvalsh one by one (no eigenvectors)", lambda: [torch.linalg.eigvalsh(c) for c in covs]),
    ]:
        print(f"{name:40s} {seconds(fn, 4) * 1e3:6.0f} ms")


def float32_errors(trackers, covs, grads):
    """Print how far a float32 eigh and a float32 ZCA product move the whitened gradients."""
    e32, z32 = [], []
    for t, c, G in zip(trackers, covs, grads.values()):
        lam, U, _ = eigen(c)
        ref = zca(G, t.mean, lam, U)  # (M, 576) float64
        l32, U32 = torch.linalg.eigh(c.float())
        e32.append(
            rel(zca(G, t.mean, l32.double().clamp_min(1e-6 * l32[-1].item()), U32.double()), ref)
        )
        z32.append(
            rel(
                (((G.double() - t.mean).float() @ U.float()) * lam.rsqrt().float()) @ U.float().T,
                ref,
            )
        )
    print(
        f"float32 eigh: whitened gradients off by {min(e32):.1e}-{max(e32):.1e} relative (bound 1e-6)"
    )
    print(f"float32 ZCA product from the float64 eigh: {min(z32):.1e}-{max(z32):.1e} relative")


def main():
    trackers, grads = trackers_and_gradients()
    covs = [t.covariance for t in trackers]
    time_routes(covs)
    float32_errors(trackers, covs, grads)


if __name__ == "__main__":
    main()
