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
from lab.outputs import atomic_write, geometry_curve, spectrum_curve

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
    """Three panels over edit steps: ||Delta_t||_F (log), the adjacent cosine, cond(Sigma_g) (log);
    integer step ticks; one legend below the panels, clear of the curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    for label, rows in runs.items():
        steps, norms, coss = geometry_curve(rows)
        _, cond, _ = spectrum_curve(rows)
        line = axes[0].plot(steps, norms, marker=".", label=label)[0]
        axes[1].plot(steps, coss, marker=".", color=line.get_color())
        if any(c == c for c in cond):  # NaN: no full covariance (ultraedit, no_ln, ft)
            axes[2].plot(steps, cond, marker=".", color=line.get_color())
    axes[0].set(ylabel="‖Δ$_t$‖$_F$ (mean over layers)", yscale="log", title="update norm")
    axes[1].set(ylabel="cos(Δ$_t$, Δ$_{t-1}$)", title="adjacent-update cosine")
    axes[1].axhline(0, color="grey", lw=0.5)
    if axes[2].lines:
        axes[2].set(yscale="log")
    else:  # older runs, or no stableedit among them
        axes[2].text(0.5, 0.5, "no cond(Σ$_g$) recorded\n(stableedit runs record it)", ha="center",
                     va="center", transform=axes[2].transAxes)  # fmt: skip
    axes[2].set(ylabel="cond(Σ$_g$) (mean over layers)", title="whitened covariance")
    for ax in axes:
        ax.set_xlabel("edit step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.legend(loc="lower center", ncol=min(3, len(runs)), frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06 + 0.05 * ((len(runs) - 1) // 3), 1, 1))
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)


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
