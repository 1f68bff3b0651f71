"""The names of results/stream_10k.md: the 10,000-edit synthetic stream at the rule's lr and three
fixed lr (seed 0), the rule on seed 1, and Gemma-3-270M over 3,000 edits."""

import random

import rules
from pagekit import D, J, f, have, lmean, order, pair, reads, run, trajectory, v

M4 = ("efficacy", "generalization", "specificity", "retain")
P95 = "95 %"
SEED0 = ["stream_10k", "stream_10k_lr5e-5", "stream_10k_lr1e-4", "stream_10k_lr2.5e-4"]
SEED1 = ["stream_10k_s1", "stream_10k_s1_lr5e-5", "stream_10k_s1_lr1e-4", "stream_10k_s1_lr2.5e-5"]
LARGER, SMALLER = SEED1[1:3], SEED1[3]
GEMMA = ["gemma_3k", "gemma_3k_lr5e-6", "gemma_3k_lr1e-5"]
PENDING = (
    "**These runs are not stored yet (`results/runs/stream_10k_s1*`): run the four commands above, "
    "then `python results/pages.py`.**\n\n"
)


def ready():
    """Whether the seed-1 runs are stored (the page waits for them otherwise)."""
    return all(have(n) for n in SEED1)


def lr(name):
    """A run's lr as the commands write it (3.75e-5)."""
    m, e = f"{run(name)['config']['lr']:.2e}".split("e")
    return f"{m.rstrip('0').rstrip('.')}e{int(e)}"


def edits(name):
    return [r for r in trajectory(name) if r["kind"] == "edit"]


def norms(name, steps):
    e = edits(name)
    return " / ".join(f(lmean(e[i - 1], "norm/")) for i in steps if i <= len(e))


def cos(name):
    """Adjacent |cos|, averaged per layer then over layers: mean and max over the steps."""
    a = [lmean(r, "cos/", absval=True) for r in edits(name)[1:]]
    return f"{f(sum(a) / len(a), 3)} / {f(max(a), 3)}"


def ck(name, metric, at):
    """A metric at the checkpoints at the given edit counts."""
    by = {c["edits"]: c[metric] for c in run(name)["checkpoints"]}
    return " / ".join(f(by[k], 0) for k in at)


def eff_range(name):
    e = [c["efficacy"] for c in run(name)["checkpoints"]]
    return f"{f(e[0], 0)}, {f(e[1], 0)}, …, {f(e[-1], 0)} ({f(min(e), 0)}–{f(max(e), 0)})"


def wdrift(name, d=1):
    """‖W_T − W_0‖_F, mean over the edited layers (results.json's weight_drift), if stored."""
    w = run(name).get("weight_drift")
    return f(sum(x["delta_fro"] for x in w.values()) / len(w), d) if w else "–"


def drift_at(name, n):
    return lmean(next(r for r in edits(name) if r["edits"] == n), "drift/")


def spe_ck(name, n):
    return next(c for c in run(name)["checkpoints"] if c["edits"] == n)["specificity"]


def early(name, upto):
    """How many of the run's evaluated edits fall before `upto` (lab.stream.eval_sample's sample)."""
    c = run(name)["config"]
    return sum(i < upto for i in random.Random(c["seed"]).sample(range(c["n"]), c["eval_n"]))


def seed0_rows():
    """The seed-0 table: geometry, efficacy, Specificity, retain and drift per lr."""
    labels = [
        f"**`{lr(SEED0[0])}` (the 1/n rule for n = 10,000)**",
        f"`{lr(SEED0[1])}`",
        f"`{lr(SEED0[2])}`",
        f"`{lr(SEED0[3])}` (the preset lr of short streams)",
    ]
    return "\n".join(
        f"| {label} | {norms(n, (10, 50, 100))} | {cos(n)} | {eff_range(n)} | "
        f"{ck(n, 'specificity', (1000, 5000, 10000))} | {f(v(n, 'retain'), 0)} % | {wdrift(n)} |"
        for n, label in zip(SEED0, labels)
    )


def seed1_row(name, label):
    at = [c["edits"] for c in run(name)["checkpoints"]]
    return (
        f"| {label} | {norms(name, (10, 50, 100))} | {cos(name)} | "
        f"{ck(name, 'specificity', at)} | {f(v(name))} | {f(v(name, 'generalization'))} | "
        f"{f(v(name, 'retain'))} | {wdrift(name)} |"
    )


def seed1_rows():
    if not ready():
        return "| … | … | … | … | … | … | … | … |"
    labels = [f"**`{lr(SEED1[0])}` (the 1/n rule)**"] + [f"`{lr(n)}`" for n in SEED1[1:]]
    return "\n".join(seed1_row(n, lab) for n, lab in zip(SEED1, labels))


def seed1_header():
    if not ready():
        return "Spe at each checkpoint"
    at = [c["edits"] for c in run(SEED1[0])["checkpoints"]]
    pre = f(v(SEED1[0], "specificity", "pre"), 0)
    return "Spe at " + " / ".join(f"{k // 100 / 10:g}k" for k in at) + f" (pre {pre})"


def n_seed1():
    """How many evaluated edits the seed-1 runs pair over."""
    return pair(SEED1[0], SEED1[1])[3] if ready() else "…"


def D1(a, b, m):
    return f"{D(a, b, m)} ({order(a, b, m)})" if ready() else "…"


def d1_cells(i):
    """The rule − SEED1[i] on the four metrics, as table cells."""
    return " | ".join(D1(SEED1[0], SEED1[i], m) for m in M4)


def seed1_readings():
    """'Rule − `5e-5`: ahead on Spe; Eff, Gen and retain not distinguishable here.' per fixed lr."""
    return " ".join(f"Rule − `{lr(o)}`: {reads(SEED1[0], o)}." for o in SEED1[1:])


def seed1_verdict():
    """The pre-stated test (results/rules.py), read from the single intervals and after Holm's
    correction over the test's own comparisons."""
    if not ready():
        return "…"
    kind, runs = rules.verdict(rules.SMOL_SEED1)
    holm_kind, _ = rules.verdict(rules.SMOL_SEED1, corrected=True)
    n = rules.n_comparisons(rules.SMOL_SEED1)
    verdict = {
        "too small": f"The rule's lr is too small here: {', '.join(f'`{lr(o)}`' for o in runs)} "
        "edits more at no locality cost.",
        "too large": "The rule's lr is too large here: the smaller lr keeps more locality at no "
        "efficacy cost.",
        "holds": "The rule holds on this stream: no larger lr edits more without losing locality, "
        "and the smaller lr does not keep more locality without editing less.",
    }[kind]
    after = (
        f" After Holm's correction over the test's {n} comparisons the verdict is the same."
        if holm_kind == kind
        else f" After Holm's correction over the test's {n} comparisons the ordering that decides it "
        f"({rules.deciding(rules.SMOL_SEED1)}) does not hold, and the test finds the rule "
        f"{'holds' if holm_kind == 'holds' else holm_kind}: the failure is a weak reading."
    )
    return seed1_readings() + " " + verdict + after


def gemma_rows():
    """Gemma's 3,000-edit table: Eff, Spe and retain at each 1,000 edits, and the drift."""
    labels = (" (the rule, `1e-5 · 500 / 3000`)", "", " (the preset)")
    at = (1000, 2000, 3000)
    return "\n".join(
        f"| `{lr(n)}`{label} | {ck(n, 'efficacy', at)} | {ck(n, 'specificity', at)} | "
        f"{ck(n, 'retain', at)} | {wdrift(n, 2)} |"
        for n, label in zip(GEMMA, labels)
    )


def context():
    wd = run("stream_10k_lr2.5e-4")["weight_drift"].values()
    return dict(
        M4=M4,
        P95=P95,
        SEED0=SEED0,
        SEED1=SEED1,
        DG=J("drift_growth.json"),
        WD_DELTA=[x["delta_fro"] for x in wd],
        WD_WEIGHT=[x["weight_fro"] for x in wd],
        PENDING="" if ready() else PENDING,
        norms=norms,
        cos=cos,
        ck=ck,
        early=early,
        spe_ck=spe_ck,
        drift_at=drift_at,
        seed0_rows=seed0_rows,
        seed1_rows=seed1_rows,
        seed1_header=seed1_header,
        n_seed1=n_seed1,
        d1_cells=d1_cells,
        seed1_verdict=seed1_verdict,
        gemma_rows=gemma_rows,
    )
