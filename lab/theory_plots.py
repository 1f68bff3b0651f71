"""The figures of theory_checks.py (§3's checks as pictures): NIW estimation error warm vs cold
(Thm 3.5/3.6, Fig. 4), the probe's bias term and drift (Thm 3.8a, Lemma D.1), the later edits'
efficacy per arm (Fig. 1b). Each takes what theory_checks / lab.theory_runs computed; nothing is measured here.

    python -m lab.theory_plots            # the estimation figure of a 2-seed synthetic run, in the temp folder
"""

import math

import matplotlib
import torch

from lab.outputs import atomic_write

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


def save(fig, path, title=""):
    fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)


def plot_estimation(path, errs, W):
    """Mean over seeds of the synthetic error curves: warm, cold from the boundary, mismatched warm-up."""
    e = torch.stack(errs).mean(0)  # (T, 3, 2)
    t = list(range(1, len(e) + 1))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for k, (ax, what) in enumerate(
        zip(axes, ("|E[mu] - mu_t| / sqrt(tr Sigma_t)", "||E[Sigma] - Sigma_t|| / ||Sigma_t||"))
    ):
        for j, label in enumerate(
            (
                f"warm ({W} warm-up batches)",
                "cold from the boundary",
                "warm-up from another distribution",
            )
        ):
            ax.plot(t, e[:, j, k], label=label)
        ax.set(xlabel="target step", ylabel=what, yscale="log")
        ax.legend(fontsize=8)
    save(fig, path, "NIW estimation, warm vs cold on the same stream (Thm 3.5/3.6)")


def plot_probe(path, runs, title):
    """Per checkpoint, mean over seeds: each tracker's bias^2, the bias term, the probe drift."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 3.8))
    pts = runs[0]["probe"]
    steps = [p["step"] for p in pts]
    mean = lambda f: [sum(f(r["probe"][i]) for r in runs) / len(runs) for i in range(len(pts))]
    for name in pts[-1]["bias2"]:
        ok = [i for i, p in enumerate(pts) if name in p["bias2"]]
        ys = mean(lambda p: p["bias2"].get(name, float("nan")))
        axes[0].plot([steps[i] for i in ok], [ys[i] for i in ok], "o-", label=name)
    axes[0].set(
        xlabel="step",
        ylabel="|Sigma^-1/2 (mu_t - m_t)|^2 / d (probe)",
        yscale="log",
        title="mean error",
    )
    axes[0].legend(fontsize=8)
    sq = mean(lambda p: p.get("bias_sq", float("nan")))
    axes[1].plot(steps, [math.sqrt(max(x, 0)) if x == x else x for x in sq], "o-")
    axes[1].set(
        xlabel="step", ylabel="|r_t| |Sigma^-1/2 (mu_t - m_t)|", title="bias term (Thm 3.8a)"
    )
    dr = mean(lambda p: p.get("drift", float("nan")))
    axes[2].plot(steps, dr, "o-")
    axes[2].set(
        xlabel="step",
        ylabel="|Sigma^-1/2 (mu_t - mu_s)| / sqrt(d) / (t - s)",
        title="probe drift (Lemma D.1)",
    )
    save(fig, path, title)


def plot_cumulative(path, runs, title):
    """Per seed, the later edits' efficacy in the three arms of Fig. 1b's comparison."""
    arms = {"mid-way start": "mid", "stats arm": "stats", "after the earlier edits": "full"}
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for j, (label, k) in enumerate(arms.items()):
        ax.bar(
            [i + 0.25 * j for i in range(len(runs))],
            [sum(r[k]) / len(r[k]) for r in runs],
            width=0.25,
            label=label,
        )
    ax.set_xticks([i + 0.25 for i in range(len(runs))], [f"seed {i}" for i in range(len(runs))])
    ax.set(ylabel="efficacy of the later edits (%)")
    ax.legend(fontsize=8)
    save(fig, path, title)


if __name__ == "__main__":
    import tempfile
    from pathlib import Path

    from lab.probe import nim_errors, stationary  # the synthetic stream's trackers

    path = Path(tempfile.gettempdir()) / "estimation.png"
    errs = [nim_errors(16, 40, 30, 5, stationary, 0.0, seed) for seed in range(2)]
    plot_estimation(path, errs, 5)
    e = torch.stack(errs).mean(0)
    print(
        f"warm tracker's mean error, first / last step: {e[0, 0, 0]:.3f} / {e[-1, 0, 0]:.3f} "
        f"(falls, Thm 3.5); written to {path}"
    )
