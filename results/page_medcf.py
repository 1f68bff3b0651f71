"""The names of results/medcf.md: MedCF (Table 10) with the official codes' replicas, and the
warm-up's source (Table 5/11) on the ZsRE evaluation split and on MedCF split within each relation."""

from page_official import against_better
from pagekit import D, Dw, f, have, order, pair, run, v

COLS = [
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
BOLD = {"efficacy", "generalization", "specificity", "efficacy_em"}
EGS = ("efficacy", "generalization", "specificity")
M4 = (*EGS, "retain")
SHORT = {"efficacy": "Eff", "generalization": "Gen", "specificity": "Spe", "retain": "retain"}
DEF, UDIAG, NOLN, FT = "medcf_default", "medcf_ultraedit", "medcf_no_ln", "medcf_ft"
RU, RS = "replicate_ultraedit_medcf", "replicate_stableedit_medcf"
RS3 = "replicate_stableedit_medcf_lr1e-3"  # the official StableEdit at its other lr
Z = {k: f"zsre_warm544_{k}" for k in ("synthetic", "zsre-calib", "medcf")}
H = {k: f"medcf_split_warm_{k}" for k in ("medcf", "synthetic", "zsre-calib")}
H0 = "medcf_split_no_warmup"


def mrow(name, label, stage="post", bold=False):
    """A row of the MedCF table, or a placeholder while the run is queued."""
    if not have(name):
        return f"| {label} | not yet run |" + " |" * (len(COLS) - 1)
    m = run(name)[stage]
    cells = [(f"**{f(m[k])}**" if bold and k in BOLD else f(m[k])) if k in m else "–" for k in COLS]
    return f"| {label} | " + " | ".join(cells) + " |"


def dl(a, b, metrics=("efficacy", "generalization", "specificity", "retain")):
    """'Eff +2.9 [+1.3, +4.4] (ahead), …' for a − b, or a placeholder while a run is queued."""
    if not (have(a) and have(b)):
        return "not yet run"
    return ", ".join(f"{SHORT[k]} {D(a, b, k)} ({order(a, b, k)})" for k in metrics)


def n_pair(a, b):
    return pair(a, b)[3] if have(a) and have(b) else "–"


def src_row(name, label, ref):
    """A warm-up-source row: its four metrics and its four paired differences to the in-domain run."""
    if not have(name):
        return f"| {label} | not yet run | | | | |"
    vals = " | ".join(f(v(name, k)) for k in (*EGS, "retain"))
    if name == ref:
        delta = "(reference)"
    elif not have(ref):
        delta = "in-domain run not yet stored"
    elif "per_request" not in run(name):
        delta = "no per-request values stored"
    else:
        delta = " / ".join(Dw(name, ref, k) for k in M4)
    return f"| {label} | {vals} | {delta} |"


def mean_abs(a, b):
    """Mean |Δ| over Eff / Gen / Spe of a − b (point values of the paired means)."""
    if not (have(a) and have(b)):
        return "not yet run"
    return f(sum(abs(pair(a, b, k)[0]) for k in EGS) / 3, 2)


def verdicts(pairs):
    """The differences among `pairs` whose interval excludes 0, or a sentence saying there are none."""
    out = []
    for a, b, label in pairs:
        if not (have(a) and have(b)):
            return "(not all runs stored yet)"
        out += [
            f"{label} {SHORT[k]} {D(a, b, k)} ({order(a, b, k)})"
            for k in M4
            if order(a, b, k) != "not distinguishable here"
        ]
    if not out:
        return "none: every difference's interval contains 0, so none is distinguishable here"
    return "; ".join(out) + ". Every other difference is not distinguishable here"


def context():
    names = dict(DEF=DEF, UDIAG=UDIAG, NOLN=NOLN, FT=FT, RU=RU, RS=RS, RS3=RS3, Z=Z, H=H, H0=H0)
    return dict(
        names,
        mrow=mrow,
        dl=dl,
        n_pair=n_pair,
        src_row=src_row,
        mean_abs=mean_abs,
        verdicts=verdicts,
        against_better=against_better,
    )
