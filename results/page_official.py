"""The names of results/official.md: our defaults and the replicas of the official codes on the
calibration split (with the sweep rows that take the gap apart), then on the ZsRE evaluation split
and on MedCF."""

from pagekit import D, J, better, diffs, egs, f, have, lr_of, order, pair, reads, s, sweep_row, v

M4 = ("efficacy", "generalization", "specificity", "retain")
OURS, RU, RS = "peers_default", "replicate_ultraedit", "replicate_stableedit"
O = "official"
UO = {"replicate": "ultraedit-official", "lr": 3e-4}
US = {"method": "ultraedit", "pooled": True, "alpha": 1, "lr": 3e-4, "warmup": 0}
GAP = [
    (
        {"replicate": "ultraedit-official", "lr": 3e-4, "verbatim": False},
        'target join: ours strips the target (`"verbatim": false`)',
    ),
    (
        {"replicate": "ultraedit-official", "lr": 3e-4, "minibatch": None},
        'loss: each request weighs the same, ours (`"minibatch": null`)',
    ),
    (
        {"replicate": "ultraedit-official", "lr": 3e-4, "stats": "niw"},
        'statistics: our NIW with its prior, exact merge (`"stats": "niw"`)',
    ),
]


# the official StableEdit's replica at the two lrs its code was run at, and our default, per split
SE_REPLICAS = {
    "ZsRE": ("replicate_stableedit_zsre", "replicate_stableedit_zsre_lr1e-3"),
    "MedCF": ("replicate_stableedit_medcf", "replicate_stableedit_medcf_lr1e-3"),
}
OURS_ON = {"ZsRE": "app_default", "MedCF": "medcf_default"}


def against_better(split):
    """'ZsRE: the better lr is `3e-4` (…); ours against it: ahead on Eff and Gen; … (Eff …)'."""
    runs = SE_REPLICAS[split]
    best, ours = better(*runs), OURS_ON[split]
    others = [n for n in runs if have(n) and n != best]
    crit = " against ".join(f"{f(egs(n))} at lr `{lr_of(n)}`" for n in [best, *others])
    missing = "".join(f"; `{n}` not stored yet" for n in runs if not have(n))
    return (
        f"{split}: the better lr is `{lr_of(best)}` (mean of Eff, Gen and Spe {crit}{missing}); "
        f"ours against it: {reads(ours, best)} ({diffs(ours, best)})"
    )


def c(table, setting, metric="efficacy"):
    """A metric of one setting's row in a calibration.json sweep table (the latest, if rerun)."""
    return [
        r
        for r in J("calibration.json")
        if r["model"] == "smollm2-135m"
        and r["stage"] == "post"
        and r["table"] == table
        and r["setting"] == setting
    ][-1][metric]


def cpre(verbatim=False):
    return sweep_row(None, {"verbatim": True} if verbatim else {}, stage="pre")


def peer(code, run_name, metric):
    """A fraction the official code printed (results/peers.json, made by results/peers.py)."""
    return J("peers.json")[code][run_name][metric]


def peer_row(code, run_name, sep=" | ", d=None):
    """Eff, Gen and Spe of one official run: × 100 to one decimal, or as printed with d decimals."""
    xs = [peer(code, run_name, k) for k in M4[:3]]
    return sep.join(f(x * 100) if d is None else f(x, d) for x in xs)


def replicas_match():
    """Whether each replica's Eff, Gen and Spe (and the pre-edit scores) equal the official code's
    to the five decimals it printed."""
    checks = [(RU, "ultraedit_check", "lr 3e-4", "post"), (RS, "stableedit", "lr 3e-4", "post")]
    checks.append((RU, "ultraedit_check", "pre", "pre"))
    return all(
        f(v(name, k, stage) / 100, 5) == f(peer(code, key, k), 5)
        for name, code, key, stage in checks
        for k in M4[:3]
    )


def vals(name, stage="post", bold=False):
    b = "**" if bold else ""
    return " | ".join(f"{b}{f(v(name, k, stage))}{b}" for k in M4)


def srow(table, setting, label):
    return f"| {label} | " + " | ".join(f(c(table, setting, k)) for k in M4) + " |"


def n_settings():
    return len(
        {
            str(r["setting"])
            for r in J("calibration.json")
            if r["model"] == "smollm2-135m" and r["table"] == "defaults" and r["stage"] == "post"
        }
    )


def gap_rows():
    """The official ULTRAEDIT's differences switched off one at a time, then all three."""
    rows = [srow(O, UO, "none (the replica)")] + [srow(O, k, lab) for k, lab in GAP]
    return "\n".join(rows + [srow(O, US, "all three (the official settings on our editor)")])


def gd(setting, metric="efficacy"):
    return s(c(O, setting, metric) - c(O, UO, metric))


def rep_row(name, label, stage="post"):
    """A row of the replicas' tables beyond the calibration split, or a placeholder."""
    if not have(name):
        return f"| {label} | not yet run | | | |"
    return f"| {label} | {vals(name, stage)} |"


def dline(a, b, label):
    """A row of paired differences a − b with their intervals, or a placeholder."""
    if not (have(a) and have(b)):
        return f"| {label} | not yet run | | | |"
    n = pair(a, b)[3]
    cells = [f"{D(a, b, k)} {order(a, b, k)}" for k in M4]
    return f"| {label} (n = {n}) | " + " | ".join(cells) + " |"


def context():
    return dict(
        OURS=OURS,
        RU=RU,
        RS=RS,
        O=O,
        UO=UO,
        US=US,
        GAP=GAP,
        gap_rows=gap_rows(),
        c=c,
        cpre=cpre,
        vals=vals,
        peer_row=peer_row,
        replicas_match=replicas_match,
        srow=srow,
        n_settings=n_settings,
        gd=gd,
        rep_row=rep_row,
        dline=dline,
        against_better=against_better,
    )
