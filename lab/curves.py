"""Update-geometry curves of several runs in one figure (Thm 3.8; Fig. 4, 7, 12).

    python -m lab.curves runs/base runs/diag runs/raw --out compare.png

Per edit step, each run's trajectory.csv gives the layer mean of ||Delta_t||_F, of the adjacent-update
cosine cos(Delta_t, Delta_{t-1}) and of cond(Sigma_g) (stableedit only); its results.json gives the
label: the method and the settings in which the runs differ. Theorem 3.8 predicts, with LN, bounded
norms and cosines near 0; without LN (Fig. 12) norms orders of magnitude smaller at the same lr.
"""

import argparse
import csv
import json
import sys
from pathlib import Path

from capture import DataError
from lab.outputs import geometry_curve, plot_geometry, spectrum_curve

# settings a label may name, as results.json's config holds them
LABEL_KEYS = ("model", "dataset", "n", "lr", "alpha", "warmup", "pooled", "editor", "replicate")


def read_run(folder):
    """(config, trajectory rows) of a run folder; DataError naming what is missing or unreadable."""
    folder = Path(folder)
    for f in ("results.json", "trajectory.csv"):
        if not (folder / f).is_file():
            raise DataError(f"{folder}: no {f} (a run folder written by run_stream.py --out)")
    try:
        config = json.loads((folder / "results.json").read_text(encoding="utf-8"))["config"]
        with open(folder / "trajectory.csv", encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except (ValueError, KeyError, UnicodeDecodeError) as e:
        raise DataError(f"{folder}: unreadable results.json or trajectory.csv ({e})") from None
    if not any(r.get("kind") == "edit" for r in rows):
        raise DataError(f"{folder}: trajectory.csv has no edit step")
    return config, rows


def labels(configs):
    """One label per run: its method, then every setting of LABEL_KEYS whose value differs among runs."""
    differ = [
        k for k in LABEL_KEYS if len({json.dumps(c.get(k), sort_keys=True) for c in configs}) > 1
    ]
    out = []
    for c in configs:
        parts = [c.get("replicate") or c.get("method", "?")]
        for k in differ:
            v = c.get(k)
            if k == "warmup" and isinstance(v, dict):
                v = f"{v['n']} {v['mode']}" if v.get("n") else "none"
            parts.append(f"{k}={json.dumps(v, sort_keys=True) if isinstance(v, dict) else v}")
        out.append(" ".join(parts))
    return out


def plot(path, runs, title=""):
    """{label: trajectory rows} drawn in one figure: ||Delta_t||_F, the adjacent cosine and, where a
    run whitened, cond(Sigma_g) over edit steps (lab.outputs.plot_geometry, Fig. 4 / 7)."""
    curves = {label: geometry_curve(rows) for label, rows in runs.items()}
    spectra = {label: spectrum_curve(rows) for label, rows in runs.items()}
    plot_geometry(path, curves, title, spectra)


def main(argv=None):
    p = argparse.ArgumentParser(description="Overlay the update geometry of several runs (Fig. 4).")
    p.add_argument("runs", nargs="+", help="run folders (run_stream.py --out)")
    p.add_argument("--out", required=True, type=Path, help="the PNG to write")
    p.add_argument("--title", default="", help="the figure's title")
    args = p.parse_args(argv)
    try:
        read = [read_run(r) for r in args.runs]
        if args.out.suffix.lower() != ".png" or not args.out.parent.resolve().is_dir():
            raise DataError(f"--out {args.out}: a .png file in an existing folder")
    except DataError as e:
        p.exit(2, f"curves: error: {e}\n")
    names = labels([c for c, _ in read])
    if len(set(names)) < len(names):  # same settings: tell the runs apart by their folders
        names = [f"{n} ({Path(r).name})" for n, r in zip(names, args.runs)]
    plot(args.out, {n: rows for n, (_, rows) in zip(names, read)}, args.title)
    for n, (_, rows) in zip(names, read):
        steps, norms, coss = geometry_curve(rows)
        tail = [abs(c) for c in coss[1:] if c == c]
        mean_cos = sum(tail) / len(tail) if tail else float("nan")
        print(f"{n}: {len(steps)} edit steps, |Delta| first/last {norms[0]:.3g}/{norms[-1]:.3g}, "
              f"mean |cos| {mean_cos:.3f}")  # fmt: skip
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
