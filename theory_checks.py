"""The paper's theory as measurements anyone can rerun (§3 Theorems 3.5, 3.6, 3.8, Cor. 3.9; Fig. 1b, 4, 12; App. B).

    python theory_checks.py                            # SmolLM2-135M, offline, ~15 min on 2 CPU cores
    python theory_checks.py --quick                    # CI size: < 5 min including model loads
    python theory_checks.py --model gemma3-270m --strict   # exit 1 if a check fails

One function per check; its docstring states the claim, its threshold is a named
constant below, fixed before the first run, with the reason next to it:
  1 estimation          Thm 3.5/3.6  NIW error falls on a fading-drift stream; warm-up = virtual samples
  2 bias_decay          Thm 3.8(a)   the bias part of the LN update shrinks relative to the update
  3 bounded_norm        Thm 3.8(b)   ||Delta_t||_F stays bounded with LN (Cor. 3.9); without LN it is
                                     orders of magnitude smaller at the same lr (Fig. 12)
  4 orthogonality       Thm 3.8(c)   adjacent updates are near-orthogonal with LN (Fig. 4)
  5 cumulative          Fig. 1b      later edits score higher after the earlier sequence than alone
  6 drift_conditioning  App. B.6.3, B.3.3  drift surrogate of the gradient mean; cond of the covariance
Checks 2-4 and 6 read one edit stream per method (stableedit, ultraedit, no_ln after a
warm-up, and stableedit without one); check 5 reuses the stableedit stream as the full
sequence and adds one run that starts mid-way. Writes theory.json and PNGs to --out.
Failed checks are reported, never hidden; only --strict turns them into exit code 1.
"""
import math
import random
import statistics
import sys
import time
from pathlib import Path

import matplotlib
import torch
from tqdm import tqdm

from data import DataError, load
from editor import Editor, NonFiniteError
from models import PRESETS, ModelError, load_model, preset_layers, preset_lr
from evaluate import edit_metrics
from niw import NIW
from settings import OneLineParser, fail
from trajectory import atomic_write, plot_geometry, write_json

matplotlib.use("Agg")                                     # files only, no display
import matplotlib.pyplot as plt                           # noqa: E402

F64 = torch.float64

# Thresholds, fixed before any run and never loosened to make a check pass.
EST_FALL = 0.5     # cold error, last/first quarter of 60 steps: sampling error alone (1/sqrt(tN)) predicts
                   # ~0.33 and the fading drift's lag falls faster (ln t / t); 0.5 fails a tracker that stalls
EST_SHIFT = 1.25   # warm(t) / cold(t+W) within 1.25x either way: both trackers then hold (W+t)N real samples
                   # (Thm 3.6's virtual samples); what is left is sampling noise, averaged over 5 repeats
BIAS_DECAY = 1.0   # relative bias, last/first quarter < 1: Thm 3.8(a) asserts decay, with no rate we could
                   # hold a fixed batch size to, so only the direction is tested
NORM_BOUND = 3.0   # max/median ||Delta_t||_F after warm-up <= 3: bounded, not growing with t (Thm 3.8b, Cor. 3.9)
NO_LN_GAP = 100.0  # median ||Delta|| with LN / without >= 100: "orders of magnitude" (Fig. 12) is at least two
ORTHO = 0.1        # mean |cos(Delta_t, Delta_t-1)| <= 0.1: cos^2 <= 1%, so successive updates add in
                   # quadrature and the accumulated change grows like sqrt(t), not t (Thm 3.8c)
NO_LN_COS = 2.0    # without LN the mean |cos| is >= 2x the LN one: "clearly farther from 0", not a noise-level gap
CUMULATIVE = 0.0   # efficacy after the full sequence minus the mid-way start > 0 points: the sign Fig. 1b claims
DRIFT_DECAY = 1.0  # drift surrogate, last/first quarter < 1: a trackable stream's estimate moves less as it accumulates

SIZES = {"full": dict(steps=30, batch=100, warmup=5, eval_n=200),
         "quick": dict(steps=8, batch=50, warmup=2, eval_n=40)}
BASE, MID = "stableedit, no warm-up", "stableedit, mid-way start"


def mean(xs):
    xs = [x for x in xs if x == x]                        # NaN-free
    return sum(xs) / len(xs) if xs else float("nan")


def quarters(xs):
    """(mean of the first quarter, mean of the last quarter) of a series."""
    q = max(1, len(xs) // 4)
    return mean(xs[:q]), mean(xs[-q:])


def target(rows):
    return [r for r in rows if r["step"] >= 0]           # the stream proper, warm-up steps have step < 0


def entry(check, measured, threshold, ok):
    """One theory.json entry: the claim (the check's docstring), measured value(s), threshold(s), pass."""
    return {"claim": " ".join(check.__doc__.split()), "measured": measured, "threshold": threshold, "pass": bool(ok)}


# ---------------------------------------------------------------- 1. estimation (synthetic)

def estimation_check(d=48, N=50, T=60, W=10, repeats=5, seed=0):
    """Theorems 3.5/3.6: on a Gaussian stream whose drift fades (mu_s = mu + 3u/s, Sigma_s = (1 + 1/s) Sigma,
    the trackable regime) the errors of the NIW expectations E[mu], E[Sigma] fall with the step, and W
    warm-up batches act as W*N virtual samples: the warm tracker's error at target step t is the cold
    tracker's at t + W (a left shift). The drift clock counts warm-up batches, as warm-up edits move the model."""
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(d, d, generator=g, dtype=F64)
    Sigma = A @ A.T / d + 0.1 * torch.eye(d, dtype=F64)
    Sigma = Sigma * d / Sigma.trace()                     # mean variance 1
    mu, u = torch.randn(d, generator=g, dtype=F64), torch.randn(d, generator=g, dtype=F64)
    u, L, top = u / u.norm(), torch.linalg.cholesky(Sigma), torch.linalg.matrix_norm(Sigma, 2)

    def errors(warm, gen):
        niw, out = NIW(d), []
        for s in range(1, warm + T + 1):
            mu_s, c = mu + 3.0 * u / s, 1.0 + 1.0 / s      # truth at step s: mean and covariance scale
            niw.update(mu_s + c ** 0.5 * torch.randn(N, d, generator=gen, dtype=F64) @ L.T)      # (N, d)
            if s > warm:
                out.append([((niw.mean - mu_s).norm() / (c * d) ** 0.5).item(),                  # / sqrt(tr Sigma_s)
                            (torch.linalg.matrix_norm(niw.covariance - c * Sigma, 2) / (c * top)).item()])
        return torch.tensor(out, dtype=F64)                # (T, 2): relative mean and covariance errors

    cold, warm = (torch.stack([errors(w, torch.Generator().manual_seed(seed + 1 + 2 * r + (w > 0)))
                               for r in range(repeats)]).mean(0) for w in (0, W))
    fall = (cold[-(T // 4):].mean(0) / cold[:T // 4].mean(0)).tolist()
    shift = (warm[:T - W].sum(0) / cold[W:].sum(0)).tolist()
    ok = all(f <= EST_FALL for f in fall) and all(1 / EST_SHIFT <= s <= EST_SHIFT for s in shift)
    measured = {"fall_mean": fall[0], "fall_cov": fall[1], "shift_mean": shift[0], "shift_cov": shift[1],
                "head_start_mean": (warm[0, 0] / cold[0, 0]).item(), "head_start_cov": (warm[0, 1] / cold[0, 1]).item(),
                "setup": f"d={d}, N={N}, T={T}, W={W}, {repeats} repeats"}
    return entry(estimation_check, measured, {"fall_max": EST_FALL, "shift_within_factor": EST_SHIFT}, ok), (cold, warm, W)


# ---------------------------------------------------------------- edit streams (real model)

def scores(model, tok, requests):
    """Edit metrics (%) of `requests`, and the per-request efficacies for a paired comparison."""
    m = edit_metrics(model, tok, requests, progress=False)
    return {**{k: m[k] for k in ("efficacy", "generalization", "specificity")}, "each": m["per_request"]["efficacy"]}


def stream(model_name, method, requests, warm, batch, lr, probe=(), when=(), desc=""):
    """Warm-up steps (step < 0), then the stream, on a freshly loaded model. Returns (rows, metrics):
    per step the layer means of ||Delta||, cos, |cos|, bias/||Delta||, drift surrogate, median cond;
    metrics of `probe` before ("pre") and/or after ("post") the run, as listed in `when`."""
    model, tok, p = load_model(model_name)
    ed = Editor(model, tok, preset_layers(p, "synthetic"), method, lr, p["alpha"])
    W = len(range(0, len(warm), batch))
    plan = [(j - W, warm[i:i + batch]) for j, i in enumerate(range(0, len(warm), batch))] + \
           [(j, requests[i:i + batch]) for j, i in enumerate(range(0, len(requests), batch))]
    metrics = {"n": len(probe), **({"pre": scores(model, tok, probe)} if "pre" in when else {})}
    rows, prev_mu = [], {}
    for step, chunk in tqdm(plan, desc=f"{desc} ({method})", unit="step", leave=False):
        rep = ed.edit(chunk)
        L, drift = rep["layers"], []
        for n in L:
            if ed.stats[n] is not None:                    # App. B.6.3: |mu_t - mu_t-1| in units of sqrt(tr Sigma_t)
                sg = ed.stats[n][1]
                if n in prev_mu:
                    drift.append(((sg.mean - prev_mu[n]).norm() / sg.variance.sum().sqrt()).item())
                prev_mu[n] = sg.mean.clone()
        ls = list(L.values())
        norms = [x["delta_norm"] for x in ls]
        rows.append({"step": step, "norm": mean(norms), "norms": norms, "cos": mean([x["cos_prev"] for x in ls]),
                     "abs_cos": mean([abs(x["cos_prev"]) for x in ls]), "drift": mean(drift),
                     "bias": mean([x["bias_norm"] / x["delta_norm"] for x in ls]),
                     "cond": statistics.median(x["cond"] for x in ls), "loss": rep["loss"]})
    if "post" in when:
        metrics["post"] = scores(model, tok, probe)
    return rows, metrics


# ---------------------------------------------------------------- 2-6. checks on the streams

def bias_check(runs):
    """Theorem 3.8(a): the bias term of the LN update (the part driven by what centering with the estimated
    mean left, b = mean_i g_hat_i) shrinks relative to ||Delta_t|| as statistics accumulate (stableedit
    without warm-up). Step 0 is left out of the quarters: its estimated mean is that batch's own mean
    (m_1 = N xbar / (N + 1)), so b ~ 0 there by construction, not by accumulation; it is reported.
    no_ln, whose 'bias' is the raw gradient mean, is reported for contrast."""
    series = [r["bias"] for r in runs[BASE]]
    (f, l), (f0, l0) = quarters(series[1:]), quarters(series)
    nf, nl = quarters([r["bias"] for r in target(runs["no_ln"])])
    return entry(bias_check, {"first_quarter": f, "last_quarter": l, "last_over_first": l / f, "step0": series[0],
                              "last_over_first_with_step0": l0 / f0, "no_ln_first_quarter": nf,
                              "no_ln_last_quarter": nl, "no_ln_last_over_first": nl / nf},
                 {"last_over_first_below": BIAS_DECAY}, l / f < BIAS_DECAY)


def norm_check(runs):
    """Theorem 3.8(b), Corollary 3.9: with LN after warm-up ||Delta_t||_F stays bounded over the stream
    (max/median <= 3); without LN, at the same lr, updates are orders of magnitude smaller (Fig. 12)."""
    se, ue, nl = ([r["norm"] for r in target(runs[k])] for k in ("stableedit", "ultraedit", "no_ln"))
    per_layer = list(zip(*[r["norms"] for r in target(runs["stableedit"])]))
    bound, gap = max(se) / statistics.median(se), statistics.median(se) / statistics.median(nl)
    nf, nlast = quarters(nl)
    return entry(norm_check, {"max_over_median": bound, "max_over_median_worst_layer":
                              max(max(x) / statistics.median(x) for x in per_layer),
                              "ultraedit_max_over_median": max(ue) / statistics.median(ue),
                              "median_norm": statistics.median(se), "median_norm_no_ln": statistics.median(nl),
                              "median_ratio_ln_over_no_ln": gap, "no_ln_last_over_first_quarter": nlast / nf,
                              "no_ln_norms_fall": nlast < nf},
                 {"max_over_median_at_most": NORM_BOUND, "median_ratio_at_least": NO_LN_GAP},
                 bound <= NORM_BOUND and gap >= NO_LN_GAP)


def ortho_check(runs):
    """Theorem 3.8(c): with LN adjacent updates are near-orthogonal, mean |cos(Delta_t, Delta_t-1)| <= 0.1,
    clearly farther from 0 without LN; StableEdit reaches |cos| <= 0.1 no later than ULTRAEDIT (steps
    counted from the first applied edit, warm-up included)."""
    m = {k: mean([r["abs_cos"] for r in target(runs[k])]) for k in ("stableedit", "ultraedit", "no_ln")}
    first = {k: next((i for i, r in enumerate(runs[k]) if r["abs_cos"] <= ORTHO), None)
             for k in ("stableedit", "ultraedit")}
    earlier = first["stableedit"] is not None and (first["ultraedit"] is None or first["stableedit"] <= first["ultraedit"])
    ok = m["stableedit"] <= ORTHO and m["no_ln"] >= NO_LN_COS * m["stableedit"] and earlier
    return entry(ortho_check, {"mean_abs_cos": m["stableedit"], "mean_abs_cos_ultraedit": m["ultraedit"],
                               "mean_abs_cos_no_ln": m["no_ln"], "no_ln_over_ln": m["no_ln"] / m["stableedit"],
                               "first_step_under_stableedit": first["stableedit"],
                               "first_step_under_ultraedit": first["ultraedit"]},
                 {"mean_abs_cos_at_most": ORTHO, "no_ln_over_ln_at_least": NO_LN_COS,
                  "first_step": "stableedit <= ultraedit"}, ok)


def cumulative_check(evals):
    """Figure 1b: the same later edits (second half of the stream) score higher after the full earlier
    sequence than when the stream starts mid-way on a fresh model (both after the same warm-up)."""
    full, mid, n = evals["stableedit"]["post"], evals[MID]["post"], evals[MID]["n"]
    diff = full["efficacy"] - mid["efficacy"]
    paired = [a - b for a, b in zip(full["each"], mid["each"])]            # same requests, two models
    se = statistics.stdev(paired) / len(paired) ** 0.5 if len(paired) > 1 else float("nan")
    return entry(cumulative_check, {"efficacy_full": full["efficacy"], "efficacy_midway": mid["efficacy"],
                                    "efficacy_gain": diff, "efficacy_gain_paired_se": se,
                                    "generalization_full": full["generalization"],
                                    "generalization_midway": mid["generalization"],
                                    "generalization_gain": full["generalization"] - mid["generalization"],
                                    "specificity_full": full["specificity"], "specificity_midway": mid["specificity"],
                                    **{f"{k}_pre_edit": v for k, v in evals[MID]["pre"].items() if k != "each"},
                                    "n_evaluated": n},
                 {"efficacy_gain_above": CUMULATIVE}, diff > CUMULATIVE)


def drift_check(runs):
    """Appendix B.6.3 / B.3.3 (stableedit without warm-up): the drift surrogate |mu_t - mu_t-1| / sqrt(tr Sigma_t)
    of the value-gradient mean, and the condition number of the running covariance. Pass = every value
    finite and the drift surrogate smaller in the last quarter of steps than in the first."""
    drift, cond = [r["drift"] for r in runs[BASE][1:]], [r["cond"] for r in runs[BASE]]
    f, l = quarters(drift)
    finite = all(math.isfinite(x) for x in drift + cond)
    return entry(drift_check, {"drift_first_quarter": f, "drift_last_quarter": l, "drift_last_over_first": l / f,
                               "cond_first": cond[0], "cond_last": cond[-1], "cond_max": max(cond), "all_finite": finite},
                 {"drift_last_over_first_below": DRIFT_DECAY, "all_finite": True}, finite and l / f < DRIFT_DECAY)


# ---------------------------------------------------------------- plots and main

def save(fig, path, title=""):
    fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)


def plot_panels(path, panels, title=""):
    """panels: [(ylabel, {label: (x, y, line style)})] side by side, log y."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.8))
    for ax, (ylabel, curves) in zip(axes, panels):
        for label, (x, y, style) in curves.items():
            ax.plot(x, y, style, label=label)
        ax.set(xlabel="step", ylabel=ylabel, yscale="log")
        ax.legend(fontsize=8)
    save(fig, path, title)


def plot_bars(path, groups, title=""):
    """groups: {metric: {label: value}} as grouped bars."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    labels, w = list(next(iter(groups.values()))), 0.8 / len(next(iter(groups.values())))
    for j, label in enumerate(labels):
        ax.bar([i + w * j for i in range(len(groups))], [g[label] for g in groups.values()], width=w, label=label)
    ax.set_xticks([i + w * (len(labels) - 1) / 2 for i in range(len(groups))], list(groups))
    ax.set(ylabel="%", ylim=(0, 100))
    ax.legend(fontsize=8)
    save(fig, path, title)


def finite_json(x):
    """NaN/inf -> null, so theory.json is valid JSON."""
    if isinstance(x, dict):
        return {k: finite_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [finite_json(v) for v in x]
    return None if isinstance(x, float) and not math.isfinite(x) else x


def main(argv=None):
    p = OneLineParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="smollm2-135m", choices=PRESETS,
                   help="model preset (its layers, alpha, and lr for a stream of this length)")
    p.add_argument("--out", help="output folder (default results/theory/<model>)")
    p.add_argument("--quick", action="store_true", help="CI size: %(steps)d steps of %(batch)d edits" % SIZES["quick"])
    p.add_argument("--strict", action="store_true", help="exit 1 when a check fails")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic streams and the evaluation sample")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: on a shared machine, "
                   "OpenMP threads spin-waiting for a busy core made steps 3-25x slower)")
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    size, t_start = SIZES["quick" if args.quick else "full"], time.perf_counter()
    T, B = size["steps"], size["batch"]
    requests = load("synthetic", T * B, seed=args.seed)
    lr = preset_lr(PRESETS[args.model], T * B)          # one lr for every run: they are compared
    warm = load("synthetic", size["warmup"] * B, offset=T * B, seed=args.seed)      # disjoint slice
    late = requests[(T // 2) * B:]
    probe = [late[i] for i in sorted(random.Random(args.seed).sample(range(len(late)), min(size["eval_n"], len(late))))]
    runs, evals, run_seconds = {}, {}, {}
    for label, method, reqs, w, pr, when in (
            ("stableedit", "stableedit", requests, warm, probe, ("post",)),
            ("ultraedit", "ultraedit", requests, warm, (), ()),
            ("no_ln", "no_ln", requests, warm, (), ()),
            (BASE, "stableedit", requests, [], (), ()),
            (MID, "stableedit", late, warm, probe, ("pre", "post"))):
        t0 = time.perf_counter()
        runs[label], evals[label] = stream(args.model, method, reqs, w, B, lr, pr, when, desc=label)
        run_seconds[label] = time.perf_counter() - t0
    est, (cold, warm_err, W) = estimation_check(seed=args.seed)
    checks = {"estimation": est, "bias_decay": bias_check(runs), "bounded_norm": norm_check(runs),
              "orthogonality": ortho_check(runs), "cumulative": cumulative_check(evals),
              "drift_conditioning": drift_check(runs)}

    out = Path(args.out or f"results/theory/{args.model}")         # created only once the model has run
    out.mkdir(parents=True, exist_ok=True)
    t = list(range(1, len(cold) + 1))
    plot_panels(out / "estimation.png", [
        (ylabel, {"cold": (t, cold[:, i], "-"), f"warm ({W} warm-up batches)": (t, warm_err[:, i], "-"),
                  f"cold shifted left by {W}": (t[:-W], cold[W:, i], ":")})
        for i, ylabel in enumerate(("|E[mu] - mu_t| / sqrt(tr Sigma_t)", "||E[Sigma] - Sigma_t||_2 / ||Sigma_t||_2"))],
        "NIW estimation on a fading-drift stream (Thm 3.5/3.6)")
    title = f"{args.model}, synthetic, {B} edits/step, warm-up {size['warmup']} steps"
    plot_geometry(out / "update_geometry.png", {k: ([r["step"] for r in runs[k]], [r["norm"] for r in runs[k]],
                                                    [r["cos"] for r in runs[k]])
                                                for k in ("stableedit", "ultraedit", "no_ln", BASE)}, title)
    plot_panels(out / "drift_conditioning.png", [
        ("|mu_t - mu_t-1| / sqrt(tr Sigma_t)",
         {k: ([r["step"] for r in runs[k]], [r["drift"] for r in runs[k]], "-") for k in ("stableedit", BASE)}),
        ("cond(Sigma_g), median over layers",
         {k: ([r["step"] for r in runs[k]], [r["cond"] for r in runs[k]], "-") for k in ("stableedit", BASE)})],
        f"{args.model}: value-gradient drift surrogate (B.6.3) and conditioning (B.3.3)")
    plot_bars(out / "cumulative.png", {m: {"pre-edit": evals[MID]["pre"][m], "after the full sequence":
                                           evals["stableedit"]["post"][m], "mid-way start": evals[MID]["post"][m]}
                                       for m in ("efficacy", "generalization", "specificity")},
              f"{args.model}: the same {len(probe)} later edits (Fig. 1b)")

    seconds = time.perf_counter() - t_start
    ok = all(c["pass"] for c in checks.values())
    preset = PRESETS[args.model]
    write_json(out / "theory.json", finite_json({
        "model": args.model, "mode": "quick" if args.quick else "full", "sizes": size, "seed": args.seed,
        "preset": {"layers": preset_layers(preset, "synthetic"), "lr": preset["lr"], "alpha": preset["alpha"]}, "lr": lr, "threads": args.threads,
        "seconds": seconds, "run_seconds": run_seconds, "all_pass": ok,
        "checks": checks, "trajectories": {k: [{c: v for c, v in r.items() if c != "norms"} for r in rows]
                                           for k, rows in runs.items()}}))
    for name, c in checks.items():
        vals = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in c["measured"].items())
        print(f"{name:19s} {'PASS' if c['pass'] else 'FAIL'}  {vals}")
    print(f"{sum(c['pass'] for c in checks.values())}/{len(checks)} checks pass; {seconds:.0f} s; outputs in {out}")
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (DataError, ModelError) as e:
        fail(e)
    except NonFiniteError as e:
        fail(e, 1)
