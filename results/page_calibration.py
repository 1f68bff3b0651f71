"""The names of results/calibration.md: the sweep tables of results/calibration.json that chose the
defaults, the long-stream runs that chose the lr rule, and Gemma-3-270M's sweep and 3,000-edit runs."""

import json
import re

from pagekit import J, f, run, s, sweep_row, v

SMOL, GEMMA = "smollm2-135m", "gemma3-270m"
T, TM, O = "defaults", "token-mean-loss", "official"  # the sweep tables
D0 = {"lr": 2.5e-4}
L3 = {"lr": 3e-4}
N3 = {"warmup": 0, "lr": 3e-4}
P3 = {"lr": 3e-4, "pooled": True}
NP3 = {"warmup": 0, "lr": 3e-4, "pooled": True}
LRS = [2.5e-4, 3e-4, 4e-4, 5e-4, 7e-4, 1e-3]
UO = {"replicate": "ultraedit-official", "lr": 3e-4}
US = {"warmup": 0, "lr": 3e-4, "alpha": 1, "method": "ultraedit", "pooled": True}
S10 = "stream_10k"
G = {"preset": "gemma_3k", "1e-5": "gemma_3k_lr1e-5", "5e-6": "gemma_3k_lr5e-6"}


def cal(table, setting, model=SMOL, stage="post"):
    return sweep_row(table, setting, model, stage)


def pre(model=SMOL, verbatim=False):
    """The pre-edit row of a model's sweep (the same 300 edits, scored before any edit)."""
    return sweep_row(None, {"verbatim": True} if verbatim else {}, model, "pre")


def c(table, setting, metric="efficacy", model=SMOL):
    return cal(table, setting, model)[metric]


def dc(table, a, b, metric="efficacy", tb=None, model=SMOL):
    """Signed point difference a − b between two sweep rows (no interval: the sweep stores means)."""
    return s(c(table, a, metric, model) - c(tb or table, b, metric, model))


def num(x):
    """A setting's number as the commands write it: 2.5e-4, 10, 0.5."""
    if isinstance(x, float) and 0 < abs(x) < 0.01:
        mant, exp = f"{x:e}".split("e")
        return f"{mant.rstrip('0').rstrip('.')}e{int(exp)}"
    return json.dumps(x)


def show(setting):
    """A setting as `{"lr": 3e-4, "layers": [14, ..., 25]}`."""
    parts = []
    for k, x in setting.items():
        if k == "layers" and x == list(range(x[0], x[-1] + 1)):
            val = f"[{x[0]}, ..., {x[-1]}]"
        else:
            val = num(x)
        parts.append(f'"{k}": {val}')
    return "`{" + ", ".join(parts) + "}`"


def label(r, with_pre):
    """A sweep row's first cell: its setting and note, or the pre-edit row (None: left out)."""
    if r["stage"] == "pre":
        if not with_pre:
            return None
        return "pre-edit" + (" (verbatim targets)" if r["setting"] else "")
    note = r.get("note", "")
    note = f" — {note}" if "(" in note else f" ({note})" if note else ""
    return show(r["setting"]) + note


def table(name, model=SMOL, with_pre=False):
    """A sweep table of calibration.json as markdown rows."""
    out = ["| setting | Eff | Gen | Spe | retain | mean ‖Δ‖_F |", "|---|---|---|---|---|---|"]
    rows = [r for r in J("calibration.json") if r["model"] == model and r["table"] == name]
    rows = [r for r in rows if r is cal(name, r["setting"], model, r["stage"])]  # latest of each
    for r in rows:
        first = label(r, with_pre)
        if first is None:
            continue
        norm = f"{r['update_norm']:.3g}" if "update_norm" in r else "–"
        out.append(
            f"| {first} | {f(r['efficacy'])} | {f(r['generalization'])} | "
            f"{f(r['specificity'])} | {f(r['retain'])} | {norm} |"
        )
    return "\n".join(out)


def sources(name, model=SMOL):
    """The dates the rows of a table were measured (from their `source`)."""
    ds = sorted(
        {
            re.search(r"\d{4}-\d\d-\d\d", r["source"]).group(0)
            for r in J("calibration.json")
            if r["model"] == model and r["table"] == name
        }
    )
    return " and ".join(ds)


def ck(name, edits, metric="specificity"):
    """A run's metric at the checkpoint after `edits` edits."""
    (x,) = [p[metric] for p in run(name)["checkpoints"] if p["edits"] == edits]
    return x


def drift(name):
    wd = run(name).get("weight_drift")
    return f(sum(x["delta_fro"] for x in wd.values()) / len(wd)) if wd else "–"


def long_row(name, label):
    """A row of the 10,000-edit table: Spe at four checkpoints, retain, Eff, mean drift."""
    spe = " / ".join(f(ck(name, e), 0) for e in (1000, 2000, 5000, 10000))
    return f"| {label} | {spe} | {f(v(name, 'retain'), 0)} % | {f(v(name), 0)} | {drift(name)} |"


LONG = ["stream_10k", "stream_10k_lr5e-5", "stream_10k_lr1e-4", "stream_10k_lr2.5e-4"]  # lr rising


def spe_falls_with_lr():
    """Whether Specificity at 10,000 edits falls as the lr of the seed-0 runs rises."""
    spe = [ck(n, 10000) for n in LONG]
    return all(b < a for a, b in zip(spe, spe[1:]))


def lr_effs():
    """Eff of the default warm-up's rows at each lr of LRS, joined by ' / '."""
    return " / ".join(f(c(T, {"lr": x})) for x in LRS)


def n_defaults():
    """How many settings the SmolLM2 sweep tried."""
    return len(
        {
            json.dumps(r["setting"], sort_keys=True)
            for r in J("calibration.json")
            if r["model"] == SMOL and r["table"] == T and r["stage"] == "post"
        }
    )


def tm_best():
    """The token-mean sweep's highest-efficacy row whose Specificity is not below pre-edit."""
    local = [
        r
        for r in J("calibration.json")
        if r["table"] == TM and r["specificity"] >= pre()["specificity"]
    ]
    return max(local, key=lambda r: r["efficacy"])


def context():
    names = dict(T=T, TM=TM, O=O, D0=D0, L3=L3, N3=N3, P3=P3, NP3=NP3, LRS=LRS, UO=UO, US=US)
    return dict(
        names,
        S10=S10,
        G=G,
        GEMMA=GEMMA,
        n_defaults=n_defaults(),
        tm_best=tm_best(),
        cal=cal,
        pre=pre,
        c=c,
        dc=dc,
        show=show,
        table=table,
        sources=sources,
        ck=ck,
        long_row=long_row,
        lr_effs=lr_effs,
        spe_falls_with_lr=spe_falls_with_lr,
    )


# run_stream.py's defaults for SmolLM2, which every sweep setting overrides (calibration.md)
SWEEP_DEFAULTS = {
    "lr": 2.5e-4,
    "alpha": 10,
    "warmup": 2000,
    "layers": list(range(18, 26)),
    "pooled": False,
    "method": "stableedit",
}
KNOB = {  # how each sweep key reads in a sentence, given its sorted values
    "lr": lambda xs: f"lr {num(xs[0])} to {num(xs[-1])} in {len(xs)} steps",
    "alpha": lambda xs: "α " + listing([num(x) for x in xs]),
    "warmup": lambda xs: "warm-up " + listing([f"{x:,}" for x in xs]) + " synthetic edits",
    "layers": lambda xs: "layers " + " or ".join(f"{x[0]}–{x[-1]}" for x in xs),
    "pooled": lambda xs: "per-layer or pooled statistics",
    "method": lambda xs: "method " + " or ".join(xs),
}


def listing(xs):
    return xs[0] if len(xs) == 1 else ", ".join(xs[:-1]) + " and " + xs[-1]


def sweep_tried(table=T, model=SMOL):
    """'the 21 settings of the sweep (lr 2e-4 to 1e-3 (7 values), α 1, 3 and 10, …)'."""
    rows = [
        r["setting"]
        for r in J("calibration.json")
        if r["model"] == model and r["table"] == table and r["stage"] == "post"
    ]
    parts = []
    for k, default in SWEEP_DEFAULTS.items():
        xs = {json.dumps(default)} | {json.dumps(s[k]) for s in rows if k in s}
        if len(xs) > 1:
            parts.append(KNOB[k](sorted(json.loads(x) for x in xs)))
    distinct = {json.dumps(s, sort_keys=True) for s in rows}
    return f"the {len(distinct)} settings of the calibration sweep ({'; '.join(parts)})"
