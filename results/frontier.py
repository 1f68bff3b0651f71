"""The efficacy–locality frontier of the calibration sweep: results/frontier.png.

Reads results/calibration.json (rows appended by results/sweep.py): SmolLM2-135M's sweep that chose
the defaults, Eff and Gen against Specificity, one marker per warm-up regime; the star is the
official ULTRAEDIT on the same 300 edits (its replica, results/runs/replicate_ultraedit, which
reproduces it to every printed digit). Usage: python results/frontier.py
"""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).resolve().parent
STYLE = {
    0: ("o", "tab:red", "no warm-up"),
    1000: ("s", "tab:orange", "warm-up 1,000"),
    2000: ("^", "tab:blue", "warm-up 2,000"),
    4000: ("D", "tab:purple", "warm-up 4,000"),
}


def read():
    """(the 'defaults' sweep's post-edit rows, the pre-edit row, the official ULTRAEDIT's metrics)."""
    rows = json.loads((HERE / "calibration.json").read_text("utf-8"))
    rows = [r for r in rows if r["model"] == "smollm2-135m"]
    sweep = {json.dumps([r["stage"], r["setting"]]): r for r in rows if r["table"] == "defaults"}
    sweep = [r for r in sweep.values() if r["stage"] == "post"]
    pre = next(r for r in rows if r["stage"] == "pre" and not r["setting"])
    peer = json.loads((HERE / "runs" / "replicate_ultraedit" / "results.json").read_text())["post"]
    return sweep, pre, peer


def plot(sweep, pre, peer):
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for r in sweep:
        marker, color, label = STYLE[r["setting"].get("warmup", 2000)]
        default = r["setting"] == {"lr": 2.5e-4}
        for ax, key in zip(axes, ("efficacy", "generalization")):
            ax.scatter(
                r["specificity"],
                r[key],
                marker=marker,
                color=color,
                label=label,
                s=120 if default else 40,
                edgecolors="black" if default else "none",
            )
    for ax, key in zip(axes, ("efficacy", "generalization")):
        name = key.capitalize()
        ax.axvline(pre["specificity"], color="grey", ls=":", lw=1)
        ax.scatter([peer["specificity"]], [peer[key]], marker="*", s=160, color="black")
        ax.scatter([], [], marker="*", s=160, color="black", label="official ULTRAEDIT")
        ax.set(
            xlabel="Specificity (pre-edit: dotted)",
            ylabel=f"{name} %",
            title=f"{name} vs Specificity",
        )
    handles, labels = axes[0].get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    axes[0].legend(uniq.values(), uniq.keys(), fontsize=8)
    fig.suptitle(
        "SmolLM2-135M, 300 zsre-calib edits: calibration sweep (large marker: the default)"
    )
    fig.tight_layout()
    fig.savefig(HERE / "frontier.png", dpi=110)


def main():
    sweep, pre, peer = read()
    plot(sweep, pre, peer)
    print(f"{len(sweep)} settings plotted to {HERE / 'frontier.png'}")


if __name__ == "__main__":
    main()
