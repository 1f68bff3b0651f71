"""Issue 16.4's two README tables, read from the runs of `results/medcf.sh`.

1. MedCF (544 records, all evaluated): each method's Eff/Gen, the four locality probes and their mean
   (our Specificity), retain and the `--generate` metrics.
2. Table 5/11's question on our data: the warm-up's source, on the ZsRE evaluation split and on
   MedCF-272. Beside each row, the paired difference to the synthetic warm-up ± 2 paired standard
   errors over the evaluated requests (`per_request`), so a reader can tell a gap from noise.

    python results/medcf_tables.py [RUNS_DIR]
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from evaluate import paired  # noqa: E402

RUNS = sys.argv[1] if len(sys.argv) > 1 else "results/runs"
METHOD_COLS = [
    "efficacy",
    "generalization",
    "specificity",
    "locality_target",
    "locality_mapping",
    "locality_struc",
    "locality_tokenSem",
    "retain",
    "efficacy_em",
    "generalization_em",
    "fluency",
]


def load(name):
    path = os.path.join(RUNS, name, "results.json")
    return json.load(open(path)) if os.path.exists(path) else None


def gap(a, b, key):
    """Mean and 2 standard errors of b − a over the requests both runs evaluated."""
    m, se = paired(a["per_request"], b["per_request"], key)
    return m, 2 * se


def method_table():
    print("| run | " + " | ".join(METHOD_COLS) + " |")
    print("|---" * (len(METHOD_COLS) + 1) + "|")
    base = load("medcf_default")
    rows = [("pre-edit", base["pre"])] if base else []
    for name in ["medcf_default", "medcf_ultraedit", "medcf_no_ln", "medcf_ft"]:
        r = load(name)
        if r:
            rows.append((f"{name} ({r['config']['method']})", r["post"]))
    for label, m in rows:
        print(
            f"| {label} | "
            + " | ".join(f"{m[c]:.1f}" if c in m else "" for c in METHOD_COLS)
            + " |"
        )


def source_table(title, runs, ref):
    keys = ["efficacy", "generalization", "specificity", "retain"]
    print(
        f"\n{title}\n\n| warm-up | "
        + " | ".join(keys)
        + " | Δ vs synthetic (Eff / Gen / Spe, ± 2 SE) |"
    )
    print("|---" * (len(keys) + 2) + "|")
    r0 = load(ref)
    for label, name in runs:
        r = load(name)
        if r is None:
            continue
        delta = ""
        if name != ref and "per_request" in r and r0 and "per_request" in r0:
            delta = " / ".join("%+.1f ± %.1f" % gap(r0, r, k) for k in keys[:3])
        print(f"| {label} | " + " | ".join(f"{r['post'][k]:.1f}" for k in keys) + f" | {delta} |")


if __name__ == "__main__":
    method_table()
    source_table(
        "ZsRE evaluation split (1,487 edits, 150 evaluated), 544 statistics-only warm-up edits",
        [
            ("none (`zsre_no_warmup`)", "zsre_no_warmup"),
            ("synthetic", "zsre_warm544_synthetic"),
            ("ZsRE calibration (in domain)", "zsre_warm544_zsre-calib"),
            ("MedCF (out of domain)", "zsre_warm544_medcf"),
        ],
        "zsre_warm544_synthetic",
    )
    source_table(
        "MedCF-272 (first 272 records edited, all evaluated), 272 statistics-only warm-up edits",
        [
            ("none", "medcf272_no_warmup"),
            ("synthetic", "medcf272_warm_synthetic"),
            ("ZsRE calibration (out of domain)", "medcf272_warm_zsre-calib"),
            ("MedCF's other 272 records (in domain)", "medcf272_warm_medcf"),
        ],
        "medcf272_warm_synthetic",
    )
