"""The names of results/whole.md: whole GPT-J-6B and Llama-3-8B measured on this CPU in bf16 with
random weights (whole.json, made by results/whole.py and results/peer_update.py)."""

from pagekit import J, f, s

GB = 1e9
MODELS = {"gpt-j": "GPT-J-6B", "llama3-8b": "Llama-3-8B"}
PHASES = ("forward_backward_s", "stats_s", "normalize_s", "solve_s", "apply_s")


def W(*keys):
    """A value of results/whole.json by its keys."""
    x = J("whole.json")
    for k in keys:
        x = x[k]
    return x


def edit_steps(e):
    return [s for s in e["steps"] if s["kind"] == "edit"]


def phase_cells(e):
    """Mean seconds per edit step of each phase."""
    rows = edit_steps(e)
    return " | ".join(f(sum(r.get(p, 0.0) for r in rows) / len(rows), 1) for p in PHASES)


def run_row(model, method):
    """One measured configuration: its steps, phases, speed, memory against the plan, checkpoint."""
    e = W("runs", model, method)
    warm = [s["wall_s"] for s in e["steps"] if s["kind"] == "warmup"]
    edits = [s["wall_s"] for s in edit_steps(e)]
    saves = e["save_seconds"][1:] or e["save_seconds"]  # the first save holds no statistics yet
    save_s = sum(saves) / len(saves)
    return (
        f"| {MODELS[model]} | {method} | {e['layers']} | {f(warm[0], 0)} | "
        f"{' / '.join(f(x, 0) for x in edits)} | {phase_cells(e)} | {f(e['s_per_edit'], 2)} | "
        f"{f(e['peak_rss'] / GB, 1)} | {f(e['plan_peak'] / GB, 1)} | "
        f"{s(100 * (e['plan_peak'] / e['peak_rss'] - 1), 0)} % | "
        f"{f(e['save_bytes'] / GB, 2)} GB in {f(save_s, 1)} s ({f(e['save_bytes'] / save_s / GB, 2)} GB/s) |"
    )


def runs_table():
    head = (
        "| model | method | layers | warm-up step s | edit steps s | fwd+bwd | stats | normalize | "
        "solve | apply | s / edit | peak RSS GB | plan GB | plan − measured | one checkpoint |"
    )
    rows = [run_row(m, k) for m in MODELS for k in ("stableedit", "ultraedit") if m in W("runs")]
    return "\n".join([head, "|---" * 15 + "|", *rows])


def ratio(model):
    """stableedit's seconds per edit over ultraedit's, measured in the same session."""
    return W("runs", model, "stableedit", "s_per_edit") / W(
        "runs", model, "ultraedit", "s_per_edit"
    )


def projected_ratio(model):
    return J("width.json")["projection"][model]["ratio"]


def worst_plan_error():
    """The largest |plan / measured - 1| over the measured runs, in %."""
    errs = [
        abs(e["plan_peak"] / e["peak_rss"] - 1)
        for runs in W("runs").values()
        for e in runs.values()
    ]
    return 100 * max(errs)


def plan_gb(model, method, device):
    return f(W("plans", f"{model}/{method}/{device}") / GB, 1)


def peer_line():
    p = W("peer")
    per = sum(p["official_s_per_layer"]) / len(p["official_s_per_layer"])
    return (
        f"official update {f(per, 1)} s per layer (d_in {p['d_in']}, {p['rows']} answer rows), ours "
        f"{f(p['ours_s'] / p['layers'], 2)} s per layer: the official update takes "
        f"{f(p['ratio_official_over_ours'], 0)}x ours"
    )


def savings(model):
    """Bytes the four memory changes remove from one step of a model's ZsRE preset, from its shapes:
    the dense Deltas of all edited layers held at once (float32, with the bias column), Sigma_g's
    float64 copy and float32 eigenvectors of all layers at once beyond the two now decomposed together,
    the snapshot of every layer's old Psi beyond one group's trial posteriors, and the saved Psi a save
    kept alive (stableedit)."""
    from lab.presets import PAPER_CONFIGS, PRESETS, preset_layers

    kw = PAPER_CONFIGS[model][1]
    d_out = kw.get("n_embd", kw.get("hidden_size"))
    d_in = kw.get("n_inner", kw.get("intermediate_size"))
    n = len(preset_layers(PRESETS[model], "zsre"))
    return {
        "dense": n * d_in * (d_out + 1) * 4,
        "eigen": (n - 2) * d_out * d_out * (8 + 4),
        "snapshot": (n - 2) * d_out * d_out * 8,  # all layers' old Psi, less one group's trial
        "save": n * d_out * d_out * 8,  # the saved Psi of every layer
    }


def saved_gb(model, what):
    return f(savings(model)[what] / GB, 2)


def accept_line():
    """What the plain command did: Algorithm 1's default warm-up for a paper model (applied, diagonal
    normalization, lab/official.py) then one stableedit edit step."""
    a = W("accept")
    peak = f"peak resident memory {f(a['peak_rss'] / GB, 1)} GB against the plan's {f(a['plan_peak'] / GB, 1)} GB"
    if a["exit"] == 0:
        return (
            f"With Algorithm 1's default warm-up for a paper model (applied, with diagonal normalization, "
            f"through lab/official.py's editor), it exits 0 and writes `editor_state.pt`; {peak} "
            f"({s(100 * (a['plan_peak'] / a['peak_rss'] - 1), 0)} %)."
        )
    return (
        f"It does **not** fit: the kernel's out-of-memory killer ended it (exit {a['exit']}) at a "
        f"{peak}."
    )


def accept_short():
    """The plain command's outcome in a clause, for the front page."""
    a = W("accept")
    if a["exit"] == 0:
        return (
            f"exits 0 at {f(a['peak_rss'] / GB, 1)} GB peak resident against the plan's "
            f"{f(a['plan_peak'] / GB, 1)} GB"
        )
    return f"does not fit in 24 GB (killed by the out-of-memory killer, exit {a['exit']})"


def resume_same():
    """Whether the kill -9 and --resume ended in the same bits as the uninterrupted run."""
    r = W("resume")
    return r["resumed"]["exit"] == 0 and not r["differing"]


def context():
    return dict(
        W=W,
        GB=GB,
        MODELS=MODELS,
        runs_table=runs_table,
        ratio=ratio,
        projected_ratio=projected_ratio,
        worst_plan_error=worst_plan_error,
        plan_gb=plan_gb,
        peer_line=peer_line,
        saved_gb=saved_gb,
        accept_line=accept_line,
        accept_short=accept_short,
        resume_same=resume_same,
    )
