"""Figure 10 on our data: Algorithm 1's applied in-domain warm-up by size and by placement (issue 17.4).

Reads results/runs/app_warm_size<N> (warm-up of N zsre-calib edits at the start; N = 0 is
zsre_no_warmup) and app_warm_at_<placement> (733 edits at q1 / middle / q3 / end; start is
app_warm_size733), prints one table and writes results/fig10.png.

    python results/fig10.py [results/runs]
"""
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

runs = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "runs")
keys = ("efficacy", "generalization", "specificity", "retain")


def post(name):
    path = runs / name / "results.json"
    return json.loads(path.read_text())["post"] if path.exists() else None


sizes = [(0, post("zsre_no_warmup"))] + [(n, post(f"app_warm_size{n}")) for n in (250, 500, 733)]
places = [("start", post("app_warm_size733"))] + [(p, post(f"app_warm_at_{p}")) for p in ("q1", "middle", "q3", "end")]
print("| warm-up | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys))
for label, rows in (("size", sizes), ("placement", places)):
    for x, m in rows:
        if m:
            print(f"| {label} {x} | " + " | ".join(f"{m[k]:.1f}" for k in keys) + " |")
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for ax, rows, xlabel in ((axes[0], sizes, "warm-up size (edits, at the start)"),
                         (axes[1], places, "placement of 733 warm-up edits")):
    rows = [(x, m) for x, m in rows if m]
    for k in keys:
        ax.plot([str(x) for x, _ in rows], [m[k] for _, m in rows], marker="o", label=k)
    ax.set(xlabel=xlabel, ylabel="%", ylim=(0, 100))
axes[0].legend()
fig.suptitle("SmolLM2-135M, 1,487 ZsRE edits, applied in-domain warm-up (Algorithm 1)")
fig.tight_layout()
fig.savefig(Path(__file__).parent / "fig10.png", dpi=110)
