"""How the total weight change |W_t - W_0|_F grows along a stream (README, A 10,000-edit stream).

Theorem 3.8 bounds each update and makes adjacent ones near-orthogonal. If all updates were
mutually orthogonal the drift would grow like a random walk, |W_t - W_0| ~ t^(1/2); updates sharing
a direction would add up coherently, ~ t. This fits p in drift ~ edits^p over the second half of
each run's drift/ columns (mean over the edited layers), plots the curves to drift_growth.png and
stores each run's lr, final drift and p in drift_growth.json (entries of other runs are kept; read
by the results pages).
Measured: p <= 1/2, so the drift alone would allow lr ~ 1/sqrt(n); the default's 1/n comes from
where locality was measured to break (lab.presets.preset_lr).
Usage: python results/drift_growth.py results/runs/stream_10k results/runs/stream_10k_lr2.5e-4
"""

import csv
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lab.outputs import layer_mean  # noqa: E402

STORE = Path(__file__).parent / "drift_growth.json"  # kept across calls, one entry per run


def growth(run):
    """(lr, edits (S,), mean drift (S,), p) of one run: p fitted over the second half of its edits."""
    with open(run / "trajectory.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["kind"] == "edit"]
    if not rows or not any(k.startswith("drift/") for k in rows[0]):
        sys.exit(f"drift_growth.py: {run}/trajectory.csv has no drift/ columns (run it again)")
    lr = json.loads((run / "results.json").read_text())["config"]["lr"]
    t = np.array([float(r["edits"]) for r in rows])  # (S,)
    d = np.array([layer_mean(r, "drift/") for r in rows])
    half = t >= t[-1] / 2
    p = np.polyfit(np.log(t[half]), np.log(d[half]), 1)[0]
    return lr, t, d, p


def main(runs):
    fig, ax = plt.subplots(figsize=(6, 4))
    store = json.loads(STORE.read_text("utf-8")) if STORE.exists() else {}
    for run in runs:
        lr, t, d, p = growth(run)
        print(
            f"{run}: lr {lr:g}, drift at {int(t[-1])} edits {d[-1]:.1f}, growth exponent p = {p:.2f}"
        )
        ax.loglog(t, d, label=f"lr {lr:g} (p = {p:.2f})")
        store[run.name] = {"lr": lr, "edits": int(t[-1]), "drift": float(d[-1]), "p": float(p)}
    ax.set_xlabel("edits")
    ax.set_ylabel("|W_t - W_0|_F, mean over edited layers")
    ax.legend()
    fig.tight_layout()
    fig.savefig(Path(__file__).parent / "drift_growth.png", dpi=120)
    STORE.write_text(json.dumps(store, indent=1) + "\n", "utf-8")


if __name__ == "__main__":
    main([Path(a) for a in sys.argv[1:]])
