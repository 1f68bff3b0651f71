"""Update geometry of the Table 4 ablation on the ZsRE evaluation split: results/ablation_geometry.png.

Paper Figure 4 layout (update norm, adjacent-update cosine per edit step) for the nine variants of
results/reproduce.sh, read back from their trajectory.csv. Theorem 3.8 predicts bounded norms and
near-zero cosines with LN; without LN the norms are orders of magnitude smaller (Figure 12).
Usage: python results/ablation_geometry.py [RUNS_DIR]   (default results/runs)
"""

import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lab.outputs import geometry_curve, plot_geometry  # noqa: E402

VARIANTS = {
    "ours: statistics-only synthetic warm-up": "zsre_full",
    "w/o warm-up": "zsre_no_warmup",
    "w/o whitening": "zsre_no_whitening",
    "w/o LN": "zsre_no_ln",
    "ULTRAEDIT": "zsre_ultraedit",
    "applied synthetic warm-up": "zsre_applied_warmup",
    "statistics-only in-domain warm-up": "zsre_indomain_warmup",
    "StableEdit, Algorithm 1's warm-up": "zsre_paper_warmup",
    "FT": "zsre_ft",
}


def main(runs):
    curves = {}
    for label, run in VARIANTS.items():
        with open(runs / run / "trajectory.csv") as f:
            curves[label] = steps, norms, coss = geometry_curve(list(csv.DictReader(f)))
        print(
            f"{label:38s} |Delta| step 1 / last {norms[0]:.3g} / {norms[-1]:.3g}; "
            f"mean |cos| {sum(abs(c) for c in coss[1:]) / (len(coss) - 1):.3f}"
        )
    plot_geometry(
        Path(__file__).parent / "ablation_geometry.png",
        curves,
        "SmolLM2-135M, ZsRE evaluation split (1,487 edits, 100 per step): Table 4 variants",
    )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "runs"))
