"""The float64 against the float32 eigh of Sigma_g on the runs of results/route_check.sh: each model's
metrics with both routes, the paired difference (float32 - float64) over the requests both evaluated
with its 95 % Student-t interval (lab.intervals.paired; the requests are the unit), and the
largest relative difference of |W_T - W_0|_F over the edited layers (results.json's weight_drift).
results/width.md is generated from the same runs and computes the same figures.

    python results/route_table.py [RUNS_DIR]
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lab.intervals import matched, paired  # noqa: E402

COLS = ("efficacy", "generalization", "specificity", "retain")


def gap(a, b, key):
    """(mean, lo, hi) of b - a over the requests both runs scored."""
    xa, xb = matched(a, b, key)
    return paired(xb, xa)


def rows(folder, model):
    """One model's rows: its metrics with each route, then the float32 - float64 row."""
    runs = {
        dt: json.load(open(os.path.join(folder, f"route_{model}_{dt}", "results.json")))
        for dt in ("float64", "float32")
    }
    for dt, r in runs.items():
        print(f"| {model} | {dt} | " + " | ".join(f"{r['post'][k]:.1f}" for k in COLS) + " | |")
    gaps = [gap(runs["float64"]["per_request"], runs["float32"]["per_request"], k) for k in COLS]
    drift = {dt: r["weight_drift"] for dt, r in runs.items()}
    worst = max(
        abs(drift["float32"][n]["delta_fro"] / d["delta_fro"] - 1)
        for n, d in drift["float64"].items()
    )
    print(
        f"| {model} | float32 − float64 (95 % t-interval) | "
        + " | ".join(f"{m:+.1f} [{lo:+.1f}, {hi:+.1f}]" for m, lo, hi in gaps)
        + f" | {worst:.1e} |"
    )


def main(folder):
    print(
        "| model | eigh | "
        + " | ".join(COLS)
        + " | ‖W_T − W_0‖_F, largest relative difference over layers |"
    )
    print("|---" * (len(COLS) + 3) + "|")
    for model in ("smollm2-135m", "gemma3-270m"):
        rows(folder, model)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/runs")
