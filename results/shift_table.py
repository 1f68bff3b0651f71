"""App. B.6.4 / Table 14's design on our data: a non-i.i.d. stream with an abrupt switch.

Reads results/runs/app_shift_<method>/results.json (results/appendix.sh: ZsRE-calibration warm-up, 544
MedCF edits, then 400 ZsRE evaluation edits; evaluated at the switch and at the end) and prints each
segment's metrics at both points, and the change of the first segment across the switch.

    python results/shift_table.py [results/runs]
"""

import json
import sys
from pathlib import Path

KEYS = ("efficacy", "generalization", "specificity", "retain")


def method_rows(r, method):
    """One method's rows: pre-edit, each segment at the switch and at the end, the first segment's change."""
    print(f"| {method} | all | pre-edit | " + " | ".join(f"{r['pre'][k]:.1f}" for k in KEYS) + " |")
    switch = r["checkpoints"][0]
    points = [
        (f"the switch ({switch['edits']} edits)", switch),
        (f"the end ({r['checkpoints'][-1]['edits']} edits)", r["checkpoints"][-1]),
    ]
    for label, ck in points:
        for seg, m in ck["segments"].items():
            print(
                f"| {method} | {seg} | {label} | " + " | ".join(f"{m[k]:.1f}" for k in KEYS) + " |"
            )
    first = next(iter(switch["segments"]))
    a, b = switch["segments"][first], r["checkpoints"][-1]["segments"][first]
    print(
        f"| {method} | {first}: end − switch | | "
        + " | ".join(f"{b[k] - a[k]:+.1f}" for k in KEYS)
        + " |"
    )


def main(runs):
    print(
        "| method | segment | evaluated at | "
        + " | ".join(KEYS)
        + " |\n|---|---|---|"
        + "---|" * len(KEYS)
    )
    for method in ("stableedit", "ultraedit"):
        path = runs / f"app_shift_{method}" / "results.json"
        if path.exists():
            method_rows(json.loads(path.read_text()), method)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "runs"))
