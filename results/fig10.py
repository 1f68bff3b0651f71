"""Figure 10 on our data: Algorithm 1's applied in-domain warm-up by size and by placement.

Reads results/runs/app_warm_size<N> (warm-up of N zsre-calib edits at the start; N = 0: none) and
app_warm_at_<placement> (733 edits at q1 / middle / q3 / end; start is app_warm_size733), prints one
table -- each row with its paired difference to no warm-up on the same 150 evaluated edits and
its paired 95 % t-interval -- and writes results/fig10.png.

    python results/fig10.py [results/runs]
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lab.intervals import matched, paired  # noqa: E402

KEYS = ("efficacy", "generalization", "specificity", "retain")


def result(runs, name):
    path = runs / name / "results.json"
    return json.loads(path.read_text()) if path.exists() else None


def versus(r, base, key):
    m, lo, hi = paired(*matched(r["per_request"], base["per_request"], key))
    return f"{m:+.1f} [{lo:+.1f}, {hi:+.1f}]"


def print_table(base, sizes, places):
    print(
        "| warm-up | "
        + " | ".join(KEYS)
        + " | vs none: Eff / Gen / Spe [95 % paired t] |\n|---|"
        + "---|" * (len(KEYS) + 1)
    )
    for label, rows in (("size", sizes), ("placement", places)):
        for x, r in rows:
            if r:
                gap = (
                    " / ".join(versus(r, base, k) for k in KEYS[:3])
                    if base and (label, x) != ("size", 0)
                    else "(the baseline)"
                )
                print(
                    f"| {label} {x} | "
                    + " | ".join(f"{r['post'][k]:.1f}" for k in KEYS)
                    + f" | {gap} |"
                )


def plot(sizes, places):
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, rows, xlabel in (
        (axes[0], sizes, "warm-up size (edits, at the start)"),
        (axes[1], places, "placement of 733 warm-up edits"),
    ):
        rows = [(x, r["post"]) for x, r in rows if r]
        for k in KEYS:
            ax.plot([str(x) for x, _ in rows], [m[k] for _, m in rows], marker="o", label=k)
        ax.set(xlabel=xlabel, ylabel="%", ylim=(0, 100))
    axes[0].legend(ncol=4, loc="upper center", fontsize=8)
    fig.suptitle("SmolLM2-135M, 1,487 ZsRE edits, applied in-domain warm-up (Algorithm 1)")
    fig.tight_layout()
    fig.savefig(Path(__file__).parent / "fig10.png", dpi=110)


def main(runs):
    base = result(runs, "app_warm_size0")
    sizes = [(n, result(runs, f"app_warm_size{n}")) for n in (0, 250, 500, 733)]
    places = [("start", result(runs, "app_warm_size733"))] + [
        (p, result(runs, f"app_warm_at_{p}")) for p in ("q1", "middle", "q3", "end")
    ]
    print_table(base, sizes, places)
    plot(sizes, places)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "runs"))
