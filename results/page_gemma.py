"""The names of results/gemma.md: the ablation on Gemma-3-270M, its preset re-checked on the
calibration split, and its horizon rule on a seed it did not see."""

import math

import rules
from page_ablation import d, diffs, dw, reads
from pagekit import D, f, order, pair, run, s, v

M = {"efficacy": "Eff", "generalization": "Gen", "specificity": "Spe", "retain": "retain"}
EG = ("efficacy", "generalization")
LEVEL = "95 %"
CAL = [  # (run, setting)
    ("gemma_calib_default", "**preset** (lr {}, layers 6–11)"),
    ("gemma_calib_lr1.4e-5", "lr {}"),
    ("gemma_calib_lr3.4e-6", "lr {}"),
    ("gemma_calib_layers10-15", "layers 10–15 at the preset lr {}"),
]
ROWS = [  # (run, short name, what it ran, the paper's row)
    ("gemma_zsre_full", "ours (default)", "**ours (default)**", "StableEdit"),
    ("gemma_zsre_no_warmup", "without warm-up", "without warm-up (`--warmup 0`)", "w/o Warm-up"),
    (
        "gemma_zsre_no_whitening",
        "diagonal + our warm-up",
        "diagonal normalization + our warm-up (`--method ultraedit`)",
        "w/o Whitening",
    ),
    ("gemma_zsre_no_ln", "no LN", "no LN (`--method no_ln --warmup 0`)", "w/o LN"),
    (
        "gemma_zsre_ultraedit",
        "ULTRAEDIT, diagonal variant",
        "this code's diagonal variant of "
        "ULTRAEDIT: α 10, per-layer NIW statistics, per-request loss, stripped targets (`--method "
        "ultraedit --warmup 0`)",
        "ULTRAEDIT (a variant, not the official algorithm)",
    ),
]
LN_ROWS = [n for n, *_ in ROWS if n != "gemma_zsre_no_ln"]
RULE = "gemma_rule_1500_s1"
RULE2, RULE_HALF = "gemma_rule_1500_s1_lr6.67e-6", "gemma_rule_1500_s1_lr1.67e-6"


def sci(x, d=2):
    """A setting like 6.8e-6."""
    e = math.floor(math.log10(x))
    return f"{round(x / 10**e, d - 1):g}e{e}"


def calib_table():
    """The preset re-checked on the calibration split: single runs, pre-edit first."""
    cpre = run("gemma_calib_default")["pre"]
    out = [
        "| calibration run (zsre-calib, 733 edits, 200 evaluated) | Eff | Gen | Spe | retain |",
        "|---|---|---|---|---|",
        "| pre-edit | " + " | ".join(f(cpre[m]) for m in M) + " |",
    ]
    for n, label in CAL:
        lr = "`" + sci(run(n)["config"]["lr"]) + "`"
        out.append(f"| {label.format(lr)} | " + " | ".join(f(v(n, m)) for m in M) + " |")
    return "\n".join(out)


def cd(a, m):
    """Single-run difference a − preset on the calibration split (no interval)."""
    return s(v(a, m) - v("gemma_calib_default", m))


def cds(a):
    return ": " + ", ".join(f"{M[m]} {cd(a, m)}" for m in M)


def spe_vs_pre():
    """Each edited row's Specificity against the no-LN run (the unedited model's answers)."""
    out = []
    for n, short, *_ in ROWS:
        if n in LN_ROWS:
            w = order(n, "gemma_zsre_no_ln", "specificity")
            w = w.replace("ahead", "above it").replace("behind", "below it")
            out.append(f"{short} {d(n, 'gemma_zsre_no_ln', 'specificity')} ({w})")
    return "; ".join(out)


def n_evaluated():
    return pair("gemma_zsre_full", "gemma_zsre_no_warmup")[3]


def table():
    """The ablation on the evaluation split, under the pre-edit row."""
    zpre = run("gemma_zsre_full")["pre"]
    out = [
        "| variant (flags) | paper row | Eff | Gen | Spe | retain |",
        "|---|---|---|---|---|---|",
        f"| pre-edit (the {n_evaluated()} evaluated requests) | pre-edited | "
        + " | ".join(f(zpre[m]) for m in M)
        + " |",
    ]
    for n, _, label, row in ROWS:
        out.append(f"| {label} | {row} | " + " | ".join(f(v(n, m)) for m in M) + " |")
    return "\n".join(out)


def diff_table():
    """Each row − ours on the four metrics, paired."""
    out = ["| row − ours (default) | Eff | Gen | Spe | retain |", "|---|---|---|---|---|"]
    for n, short, _, _ in ROWS[1:]:
        out.append(
            f"| {short} (`{n}`) | " + " | ".join(dw(n, "gemma_zsre_full", m) for m in M) + " |"
        )
    return "\n".join(out)


def rule_table(test=rules.GEMMA_SEED1):
    """A horizon-rule test's runs: the rule's lr against twice and half of it."""
    rule, (twice,), half, _ = test
    seed = run(rule)["config"]["seed"]
    out = [
        f"| lr (seed {seed}, 1,500 edits) | Eff | Gen | Spe | retain | Eff − rule, paired 95 % |",
        "|---|---|---|---|---|---|",
        "| pre-edit | " + " | ".join(f(v(rule, m, "pre")) for m in M) + " | |",
    ]
    for r, label in ((rule, "**the rule**"), (twice, "2×"), (half, "½×")):
        out.append(
            f"| {label} `{sci(run(r)['config']['lr'])}` | "
            + " | ".join(f(v(r, m)) for m in M)
            + f" | {'' if r == rule else D(r, rule)} |"
        )
    return "\n".join(out)


def retest_section():
    """The criterion re-tested on a fresh seed, run after it was written: its table and readings,
    or a line saying the runs are not stored yet."""
    test = rules.GEMMA_RETEST
    if test is None or not rules.stored(test):
        return (
            "The re-test on a fresh seed (run after the criterion was written) is not stored yet."
        )
    rule, (twice,), half, _ = test
    seed = run(rule)["config"]["seed"]
    kind, _ = rules.verdict(test)
    holm_kind, _ = rules.verdict(test, corrected=True)
    n = rules.n_comparisons(test)
    verdict = "the rule holds" if kind == "holds" else f"the rule's lr is {kind}"
    after = "the same" if holm_kind == kind else holm_kind
    return (
        f"**The criterion re-tested on a fresh seed ({seed})**, run after it was written: the same "
        f"commands with `--seed {seed}` (`results/runs/{rule}*`).\n\n{rule_table(test)}\n\n"
        f"Against twice the lr, the rule's lr is {reads(rule, twice)}; against half of it, "
        f"{reads(rule, half)} (paired over the {pair(rule, twice)[3]} evaluated requests). Read "
        f"from the single intervals {verdict} on this stream; after Holm's correction over the "
        f"test's {n} comparisons, {after}."
    )


def rule_verdict():
    """The test on the seed-1 stream, read from the single intervals and after Holm's correction
    over its own comparisons (results/rules.py)."""
    kind, _ = rules.verdict(rules.GEMMA_SEED1)
    holm_kind, _ = rules.verdict(rules.GEMMA_SEED1, corrected=True)
    n = rules.n_comparisons(rules.GEMMA_SEED1)
    text = "The rule holds on this stream" if kind == "holds" else f"The rule's lr is {kind} here"
    if holm_kind == kind:
        return text + f" (the same after Holm's correction over the test's {n} comparisons)."
    return text + f"; after Holm's correction over the test's {n} comparisons it {holm_kind}."


def context():
    assert run("gemma_zsre_no_ln")["pre"] == run("gemma_zsre_no_ln")["post"]  # answers as unedited
    return dict(
        M=M,
        EG=EG,
        LEVEL=LEVEL,
        RULE=RULE,
        RULE2=RULE2,
        RULE_HALF=RULE_HALF,
        N=n_evaluated(),
        CTABLE=calib_table(),
        TABLE=table(),
        DIFF=diff_table(),
        RULE_TABLE=rule_table(),
        retest_section=retest_section,
        cpre=run("gemma_calib_default")["pre"],
        d=d,
        diffs=diffs,
        reads=reads,
        sci=sci,
        cd=cd,
        cds=cds,
        spe_vs_pre=spe_vs_pre,
        rule_verdict=rule_verdict,
    )
