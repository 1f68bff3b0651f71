"""An edit stream's outputs: atomic files, trajectory rows, and the paper's figure layouts
(Figure 4: update norm and adjacent-update cosine per step; Figures 5/6: metrics over edits).

    write_json(out / "results.json", results)         # every file written atomically
    steps, norms, coss = geometry_curve(rows)          # rows as run_stream holds them or csv reads them
    plot_geometry(out / "update_geometry.png", {"stableedit": (steps, norms, coss)})
"""

import csv
import io
import json
import math
import os
import re
from pathlib import Path


def atomic_write(path, write):
    """write(file) into path.tmp, then rename: readers see the old or the new file, never half of one."""
    tmp = Path(f"{path}.tmp{os.getpid()}")  # two processes writing one path never share a tmp
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:  # a failed or interrupted write leaves nothing behind
        tmp.unlink(missing_ok=True)
        raise


def finite_json(obj, notes, path=""):
    """obj with every NaN/Inf float replaced by None, and notes[path] = 'nan' | 'inf' | '-inf' for
    each: JSON has no such literals (json.dumps would write NaN or Infinity, which parsers refuse)."""
    if isinstance(obj, dict):
        return {k: finite_json(v, notes, f"{path}/{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v, notes, f"{path}/{i}") for i, v in enumerate(obj)]
    if isinstance(obj, float) and not math.isfinite(obj):
        notes[path] = repr(obj)
        return None
    return obj


def write_json(path, obj):
    """obj as strict JSON: a NaN or Inf is written null, and the top level's "null_values" says what
    each was ({"/post/cos": "nan"}: undefined; "inf": an overflow)."""
    notes = {}
    obj = finite_json(obj, notes)
    if notes and isinstance(obj, dict):
        obj["null_values"] = notes
    atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2, allow_nan=False).encode()))


def write_csv(path, rows):
    cols = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, cols)
    w.writeheader()
    w.writerows(rows)
    atomic_write(path, lambda f: f.write(buf.getvalue().encode()))


def short(layer):
    m = re.search(r"\.(\d+)\.", layer)
    return f"L{m.group(1)}" if m else layer


def layer_mean(row, prefix):
    """Mean over the edited layers of a trajectory row's `prefix` columns (norm/, cos/, bias/, drift/),
    as run_stream holds the row or as csv.DictReader reads it back (strings, '' where absent)."""
    xs = [float(v) for k, v in row.items() if k.startswith(prefix) and v != ""]
    xs = [x for x in xs if x == x]  # NaN: the first step has no previous update
    return sum(xs) / len(xs) if xs else float("nan")


def geometry_curve(rows):
    """(edit steps 1..T, layer mean of ||Delta_t||, of cos(Delta_t, Delta_t-1)) from trajectory rows."""
    edit = [r for r in rows if r["kind"] == "edit"]
    return (
        list(range(1, len(edit) + 1)),
        [layer_mean(r, "norm/") for r in edit],
        [layer_mean(r, "cos/") for r in edit],
    )


def spectrum_curve(rows):
    """(edit steps, layer mean of cond(Sigma_g), of lambda_max(Sigma_g)) after each step (App. B.3.3);
    NaN where no full covariance was whitened (ultraedit, no_ln, ft)."""
    edit = [r for r in rows if r["kind"] == "edit"]
    return (
        list(range(1, len(edit) + 1)),
        [layer_mean(r, "cond/") for r in edit],
        [layer_mean(r, "lmax/") for r in edit],
    )


def plot_geometry(path, curves, title="", spectra=None):
    """Paper Figure 4 layout: update norm (log) and adjacent-update cosine vs edit step, and with
    spectra ({label: spectrum_curve(rows)}) a third panel: Sigma_g's condition number (solid) and
    largest eigenvalue (dashed) (Figure 7 / App. B.3.3). curves: {label: (steps, norms, cosines)}.
    One colour per run in every panel, integer step ticks, one legend below the panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    spectra = {k: v for k, v in (spectra or {}).items() if any(c == c for c in v[1])}
    fig, axes = plt.subplots(1, 3 if spectra else 2, figsize=(16 if spectra else 11, 4.2))
    ax1, ax2 = axes[:2]
    ax3, ax4 = (axes[2], axes[2].twinx()) if spectra else (None, None)
    for label, (steps, norms, coss) in curves.items():
        color = ax1.plot(steps, norms, marker=".", label=label)[0].get_color()
        ax2.plot(steps, coss, marker=".", color=color)
        if label in spectra:
            s, cond, lmax = spectra[label]
            ax3.plot(s, cond, color=color)
            ax4.plot(s, lmax, ls="--", color=color)
    ax1.set(ylabel="||Δ_t||_F (mean over layers)", yscale="log", title="update norm")
    ax2.set(ylabel="cos(Δ_t, Δ_{t-1})", title="adjacent-update cosine")
    ax2.axhline(0, color="grey", lw=0.5)
    if spectra:
        ax3.set(ylabel="cond(Σ_g), solid (mean over layers)", yscale="log", title="covariance of g")
        ax4.set(ylabel="λ_max(Σ_g), dashed")
        if any(x > 0 for _, _, lmax in spectra.values() for x in lmax):  # log of nothing fails
            ax4.set(yscale="log")
    for ax in axes:
        ax.set_xlabel("edit step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    rows = (len(curves) + 2) // 3
    fig.legend(loc="lower center", ncol=min(3, len(curves)), frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.07 * rows, 1, 1))  # the legend's rows below the panels
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)


def plot_trajectory(path, checkpoints, title=""):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.8))
    for key in [
        k for k in ("efficacy", "generalization", "specificity", "retain") if k in checkpoints[-1]
    ]:
        ax.plot(
            [c["edits"] for c in checkpoints], [c[key] for c in checkpoints], marker="o", label=key
        )
    ax.set(xlabel="edits so far", ylabel="%", ylim=(0, 100), title=title)
    ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)


WARMUP_HOW = {
    "stats": "statistics only",
    "applied": "applied",
    "paper": "applied, diagonal (Algorithm 1)",
}
HEAD = {"efficacy": "Eff", "generalization": "Gen", "specificity": "Spe", "retain": "retain"}


def metrics_table(results, post):
    """The summary's metrics table: the paper's four columns first, then whatever else the data
    scores; one line where nothing was evaluated."""
    cols = [k for k in HEAD if k in post] + sorted(
        k for k in post if k not in HEAD and k not in ("glue", "segments")
    )
    if not cols:
        return ["no evaluation (--eval-n 0)"]
    width = {k: max(8, len(HEAD.get(k, k)) + 2) for k in cols}
    rows = [("pre-edit", results["pre"]), ("post-edit", post)]
    rows += [(f"  {s}", m) for s, m in post.get("segments", {}).items()]
    w0 = max(10, *(len(name) + 1 for name, _ in rows))
    lines = [
        f"{'':{w0}s}"
        + "".join(f"{HEAD.get(k, k):>{width[k]}s}" for k in cols)
        + f"   (n = {len(results['per_request']['index'])} evaluated edits)"
    ]
    for name, m in rows:
        lines.append(
            f"{name:{w0}s}" + "".join(f"{m.get(k, float('nan')):{width[k]}.1f}" for k in cols)
        )
    return lines


def summary(results, out):
    """What run_stream.py prints at the end: the run in one line, the metrics table (the paper's four
    columns first, then whatever else the data scores), the cost, the drift and the outputs."""
    cfg, t, hits, post = (
        results["config"],
        results["timing"],
        results["timing"]["cache"],
        results["post"],
    )
    wu = cfg["warmup"]
    cached = ", read from the cache" if hits["warmup"] == "hit" else ""
    warm = (
        f", warm-up {wu['n']} {wu['data']} ({WARMUP_HOW[wu['mode']]}{cached})"
        if wu["n"]
        else ", no warm-up"
    )
    rep = f" replicating {cfg['replicate']}" if cfg["replicate"] else ""
    step = f" {cfg['step_size']:g}" if cfg["step_size"] else ""
    skip = f" (the first {cfg['skip']} skipped)" if cfg["skip"] else ""
    lines = [
        f"\n{cfg['method']}{rep} on {cfg['model']}: {cfg['n']} edits of {cfg['dataset']}{skip}, "
        f"{cfg['batch']} per step{warm}; lr {results['lr']:.3g} ({cfg['origin']['lr']}{step}), "
        f"alpha {cfg['alpha']:g}"
    ]
    if results.get("note"):
        lines.append(results["note"])
    lines += metrics_table(results, post)
    rel = [d["delta_fro"] / d["weight_fro"] for d in results["weight_drift"].values()]
    lines.append(
        f"{t['seconds_per_edit']:.3f} s per edit; method overhead {t['overhead_ratio']:.3f}x of "
        f"forward+backward; |W_T - W_0| / |W_0| {min(rel):.3f}-{max(rel):.3f} over the edited layers; "
        f"{t['wall_seconds']:.0f} s in all (cache: pre-edit {hits['pre']}, warm-up {hits['warmup']}); "
        f"outputs in {out}"
    )
    if "hidden_shift" in results:
        h = results["hidden_shift"]
        lines.append(
            f"hidden states of {h['n']} unrelated prompts (App. B.5): mean cos(pre, post) "
            f"{h['mean_cosine']:.4f}, mean |h_post - h_pre| / |h_pre| {h['mean_rel_change']:.4f}, "
            f"Frechet / tr(Sigma_pre) {h['frechet_rel']:.4f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    import math
    import tempfile

    rows = [
        {"kind": "edit", "norm/L1": 2.0, "cos/L1": float("nan")},
        {"kind": "edit", "norm/L1": 1.5, "cos/L1": 0.01},
    ]
    with tempfile.TemporaryDirectory() as d:
        write_csv(Path(d) / "t.csv", rows)
        with open(Path(d) / "t.csv") as f:
            back = geometry_curve(list(csv.DictReader(f)))
    same = back[:2] == geometry_curve(rows)[:2] and math.isnan(back[2][0]) and back[2][1] == 0.01
    print(f"geometry curve {back}: the same read back from trajectory.csv: {same}")
