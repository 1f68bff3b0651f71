"""The names of results/ablation.md: Table 4's ablation on the whole ZsRE evaluation split (its table,
the differences to ours through the twin runs that hold per-request values, the calibration rows that
chose the settings, and the update geometry of the runs)."""

import math

import pagekit
from lab.outputs import geometry_curve
from page_calibration import sweep_tried
from page_official import against_better
from pagekit import D, Dw, f, pair, run, sweep_row, trajectory, v

M = ("efficacy", "generalization", "specificity", "retain")
# rows whose per-request values are stored in a run of the same configuration (results/appendix.sh)
TWIN = {
    "zsre_full": "app_default",
    "zsre_ft": "app_ft",
    "zsre_no_ln": "app_no_ln",
    "zsre_no_warmup": "app_warm_size0",
    "zsre_paper_warmup": "app_warm_size733",
    "zsre_ultraedit": "app_ultraedit",
}
ROWS = [  # (run, short name, what it ran, the paper's row it stands for)
    (
        "zsre_full",
        "ours (default)",
        "**ours (default)**: full whitening + a statistics-only warm-up of "
        "2,000 synthetic edits (out of domain, no weight change)",
        "StableEdit, with the warm-up of "
        "Warmup-100 (Table 13: statistics only) from another domain (Table 11's question)",
    ),
    (
        "zsre_paper_warmup",
        "Algorithm 1's warm-up",
        "full whitening + the paper's Algorithm 1 warm-up: "
        "all 733 usable calibration records, applied, diagonally normalized (`--warmup-mode paper "
        "--warmup 733`)",
        "StableEdit (full)",
    ),
    ("zsre_no_warmup", "without warm-up", "without warm-up (`--warmup 0`)", "w/o Warm-up"),
    (
        "zsre_no_whitening",
        "diagonal + our warm-up",
        "diagonal normalization + our warm-up (`--method ultraedit`)",
        "w/o Whitening",
    ),
    ("zsre_no_ln", "no LN", "no LN (`--method no_ln --warmup 0`)", "w/o LN"),
    (
        "zsre_ultraedit",
        "ULTRAEDIT, diagonal variant",
        "this code's diagonal variant of ULTRAEDIT: α 10, "
        "per-layer NIW statistics, per-request loss, stripped targets (`--method ultraedit --warmup 0`)",
        "ULTRAEDIT (a variant, not the official algorithm)",
    ),
    (
        "replicate_ultraedit_zsre",
        "official ULTRAEDIT, replica",
        "replica of the official ULTRAEDIT code (`--replicate ultraedit-official --lr 3e-4`)",
        "ULTRAEDIT",
    ),
    (
        "replicate_stableedit_zsre",
        "official StableEdit, replica",
        "replica of the official StableEdit "
        "code with Algorithm 1's warm-up on the 733 calibration records, applied (`--replicate "
        "stableedit-official --lr 3e-4 --warmup 733`)",
        "StableEdit (the official code)",
    ),
    (
        "replicate_stableedit_zsre_lr1e-3",
        "official StableEdit, replica, lr 1e-3",
        "the same replica at lr `1e-3` (`--replicate stableedit-official --lr 1e-3 --warmup 733`)",
        "StableEdit (the official code)",
    ),
    (
        "zsre_ft",
        "FT",
        "plain fine-tuning of the same 8 matrices (`--method ft --lr 10`, no warm-up)",
        "FT (Table 1)",
    ),
    (
        "zsre_applied_warmup",
        "applied synthetic warm-up",
        "the synthetic warm-up applied to the weights (`--warmup-mode applied`)",
        "an applied out-of-domain warm-up (Warmup-MedCF, Table 11)",
    ),
    (
        "zsre_indomain_warmup",
        "statistics-only in-domain warm-up",
        "a statistics-only *in-domain* warm-up (`--warmup 733 --warmup-data zsre-calib`)",
        "Warmup-100 (Table 13), in domain",
    ),
]
NO_LN = ("zsre_no_ln", "zsre_ft")  # the rows without LN
ALG1 = {"wmode": "paper", "warmup": 433, "wdata": "zsre-calib"}
LEVEL = "95 %"


def check_twins():
    """Each twin holds the same metrics as its row; the no-LN run answers as the unedited model."""
    for a, b in TWIN.items():
        assert run(a)["pre"] == run(b)["pre"] and run(a)["post"] == run(b)["post"], (a, b)
    assert run("zsre_no_ln")["pre"] == run("zsre_no_ln")["post"]


def P(name):
    """The run holding a row's per-request values: the row itself or its twin."""
    return TWIN.get(name, name)


def d(a, b, m="efficacy"):
    """pagekit.D through the twins."""
    return D(P(a), P(b), m)


def dw(a, b, m="efficacy"):
    """pagekit.Dw (the interval and, where it excludes 0, its reading) through the twins."""
    return Dw(P(a), P(b), m)


def diffs(a, b, ms=M):
    """pagekit.diffs through the twins."""
    return pagekit.diffs(P(a), P(b), ms)


def reads(a, b, ms=M):
    """pagekit.reads through the twins."""
    return pagekit.reads(P(a), P(b), ms)


def n_evaluated():
    return pair(P("zsre_full"), P("zsre_no_warmup"))[3]


def table():
    """Every row's metrics and seconds per edit, under the pre-edit row."""
    pre = run("zsre_full")["pre"]
    out = [
        "| variant (flags) | paper row | Eff | Gen | Spe | retain | s/edit |",
        "|---|---|---|---|---|---|---|",
        f"| pre-edit (the {n_evaluated()} evaluated requests) | pre-edited | "
        + " | ".join(f(pre[m]) for m in M)
        + " | |",
    ]
    for n, _, label, row in ROWS:
        out.append(
            f"| {label} | {row} | "
            + " | ".join(f(v(n, m)) for m in M)
            + f" | {f(run(n)['timing']['seconds_per_edit'], 3)} |"
        )
    return "\n".join(out)


def diff_table():
    """Each row − ours on the four metrics, paired through the twins."""
    out = ["| row − ours (default) | Eff | Gen | Spe | retain |", "|---|---|---|---|---|"]
    for n, short, _, _ in ROWS[1:]:
        out.append(f"| {short} (`{n}`) | " + " | ".join(dw(n, "zsre_full", m) for m in M) + " |")
    return "\n".join(out)


def sci(x):
    """A setting like 2.5e-4 (mantissa and exponent, no padding)."""
    e = math.floor(math.log10(x))
    return f"{x / 10**e:g}e{e}"


def cal(setting, m="efficacy"):
    """A single run of the calibration sweep (results/calibration.json, table 'official')."""
    return sweep_row("official", setting)[m]


def cos_abs(n):
    """Mean |cos(Δ_t, Δ_t−1)| per layer, then over layers and steps 2..T."""
    xs = [
        abs(x)
        for r in trajectory(n)
        if r["kind"] == "edit"
        for k, x in r.items()
        if k.startswith("cos/") and x != "" and x == x
    ]
    return sum(xs) / len(xs)


def drift(n):
    """(min, max) over the edited layers of ‖W_T − W_0‖_F / ‖W_0‖_F (results.json weight_drift)."""
    r = [w["delta_fro"] / w["weight_fro"] for w in run(P(n))["weight_drift"].values()]
    return min(r), max(r)


def e1(x):
    """1.0e-4: one decimal, scientific."""
    m, e = f"{x:.1e}".split("e")
    return f"{m}e{int(e)}"


def pow10(x):
    """x rounded to a power of ten, written 10⁵."""
    return "10" + str(round(math.log10(x))).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))


def geometry():
    """The update geometry of this code's runs: {run: curve}, and the LN rows' norms and |cos|."""
    runs = [n for n, *_ in ROWS if n.startswith("zsre_")]
    geo = {n: geometry_curve(trajectory(n)) for n in runs}
    ln = [n for n in runs if n not in NO_LN]
    return dict(
        GEO=geo,
        NORMS_LN=[x for n in ln for x in geo[n][1]],
        COS_LN=[cos_abs(n) for n in ln],
    )


def context():
    check_twins()
    warm = [r for r in trajectory("zsre_full") if r["kind"] == "warmup"]
    return dict(
        **geometry(),
        N=n_evaluated(),
        TABLE=table(),
        DIFF=diff_table(),
        RETAIN=[v(n, "retain") for n, *_ in ROWS if n not in NO_LN],
        pre=run("zsre_full")["pre"],
        WARM=warm,
        WARM_S=sum(r["wall_s"] for r in warm),
        ALG1=ALG1,
        LEVEL=LEVEL,
        P=P,
        d=d,
        diffs=diffs,
        reads=reads,
        sci=sci,
        cal=cal,
        cos_abs=cos_abs,
        drift=drift,
        e1=e1,
        pow10=pow10,
        sweep_tried=sweep_tried,
        against_better=against_better,
    )
