"""The largest per-step |Delta|_F / |W|_F in the stored runs: what editor.MAX_UPDATE (2.0) is chosen from.

    python results/update_bound.py        # reads results/runs/*/trajectory.csv and results.json

Per run: the largest norm/<layer> of an edit step over that layer's |W_0|_F (results.json's
weight_drift); the bound is set an order of magnitude above the largest of them. results/README.md
states the same figure through `stored()`.
"""

import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lab.outputs import short  # noqa: E402

RUNS = Path(__file__).resolve().parent / "runs"


def largest_ratio(run):
    """(largest |Delta_t|_F / |W_0|_F over the edit steps and layers of a run, its method, model)."""
    res = json.loads((run / "results.json").read_text())
    W = {short(n): d["weight_fro"] for n, d in res["weight_drift"].items()}
    with open(run / "trajectory.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["kind"] == "edit"]
    ratios = [
        float(v) / W[k[5:]]
        for r in rows
        for k, v in r.items()
        if k.startswith("norm/") and k[5:] in W and v not in ("", "nan")
    ]
    return max(ratios), res["config"]["method"], res["config"]["model"]


def stored(runs=RUNS):
    """[((ratio, method, model), run name)] of every stored run that records |W_0|_F, ascending."""
    found = []
    for r in sorted(runs.iterdir()):
        if not ((r / "trajectory.csv").exists() and (r / "results.json").exists()):
            continue  # a run still being written, or one without a trajectory
        if "weight_drift" in json.loads((r / "results.json").read_text()):
            found.append((largest_ratio(r), r.name))
    return sorted(found)


def main():
    found = stored()
    for (ratio, method, model), name in found[-5:]:
        print(f"{ratio:.3f}  {name} ({method}, {model})")
    print(f"largest per-step |Delta|_F / |W|_F in {len(found)} stored runs: {found[-1][0][0]:.3f}")


if __name__ == "__main__":
    main()
