"""Figure 1b on a benchmark: do the first K edits of a stream help the later ones? (issue 17.3)

Pairs each seed's full run (app_cum_full_s<seed>) with its skipped run (app_cum_skip_s<seed>, the
same stream without its first K edits) on the later edits both evaluated -- matched by stream
index and prompt from results.json's per_request -- and reports, per metric, the mean paired gain
full - skipped per seed and pooled, with the pooled paired standard error (sd of the per-request
differences / sqrt(pairs)). The effect counts as there when the pooled gain exceeds 2 SE.

    python results/cumulative.py [results/runs]
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from evaluate import mean_se  # noqa: E402

runs = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "runs")
metrics = ("efficacy", "generalization", "specificity", "retain")
diffs = {m: [] for m in metrics}
print("| seed | pairs | " + " | ".join(f"{m} gain" for m in metrics) + " |")
print("|---|---|" + "---|" * len(metrics))
seeds = sorted(
    int(p.name.rsplit("_s", 1)[1])
    for p in runs.glob("app_cum_full_s*")
    if (p / "results.json").exists()
)
for seed in seeds:
    full, skip = (
        json.loads((runs / f"app_cum_{k}_s{seed}" / "results.json").read_text())["per_request"]
        for k in ("full", "skip")
    )
    at = {(i, p): j for j, (i, p) in enumerate(zip(full["index"], full["prompt"]))}
    pairs = [
        (at[(i, p)], j)
        for j, (i, p) in enumerate(zip(skip["index"], skip["prompt"]))
        if (i, p) in at
    ]
    row = []
    for m in metrics:
        d = [
            full[m][a] - skip[m][b]
            for a, b in pairs
            if full[m][a] is not None and skip[m][b] is not None
        ]
        diffs[m] += d
        row.append(f"{sum(d) / len(d):+.2f}")
    print(f"| {seed} | {len(pairs)} | " + " | ".join(row) + " |")
row = []
for m in metrics:
    mean, se = mean_se(diffs[m])
    row.append(
        f"{mean:+.2f} ± {se:.2f} ({'> 2 SE' if mean > 2 * se else 'no' if mean < -2 * se else 'within 2 SE'})"
    )
print(f"| pooled | {len(diffs['efficacy'])} | " + " | ".join(row) + " |")
