"""How a theory claim reads (§3's theorems as checks, theory_checks.py): a sub-claim's 95 % Student-t
interval over seeds against a threshold fixed before the runs, the same statistic on a control, the
per-seed paired contrast LN − control, and the verdict again at ±20 % of the threshold.

A claim holds when its interval lies on the claimed side of the threshold; it is evidence only when the
control (no LN, or a stream off the theorem's premise) falls wholly on the other side of the same
threshold, and otherwise "holds, not discriminating". A paired contrast (one value per seed: the LN
arm's statistic minus its control's on the same stream) separates the two arms when its interval lies
wholly on the side the theorem predicts; wholly on the other side it reads "reversed". Contrasts (the
claim itself compares two arms), sanity checks (true for any correct estimator) and reported rows (no
verdict) are labelled as such. A check passes only with at least one discriminating row (evidence, a
contrast that holds, a paired contrast that separates) and no failing claim; with none it reads
"holds, not discriminating". A model-free check (synthetic streams, no model) is never the model's
evidence.

    python -m lab.verdicts    # a claim its control meets too, one its control does not, a paired contrast
"""

from lab.intervals import t_interval

# How a sub-claim reads. Evidence needs the same statistic, on the control (no LN, or a stream off
# the theorem's premise), to fall on the other side of the same threshold.
EVIDENCE, NOT_DISCRIMINATING, FAILS = "evidence", "holds, not discriminating", "fails"
CONTRAST, SANITY, REPORTED = "contrast", "sanity check", "reported"
# a paired contrast LN − control over seeds: where its interval lies against 0
PAIRED = "paired"
SEPARATES, NO_SEPARATION, REVERSED = (
    "paired: separates",
    "paired: not distinguishable from 0",
    "paired: reversed",
)
# a check's state: PASSES needs a discriminating row; MIXED, a paired contrast each way
PASSES, MIXED = "passes", "holds, contrasts disagree"
DISCRIMINATING = (EVIDENCE, f"{CONTRAST}: holds", SEPARATES)
# the verdict is also read at these multiples of the threshold (a band (a, b): (a / f, b f))
FACTORS = (0.8, 1.2)


def interval(xs):
    """(mean, lower, upper): the 95 % Student-t interval over the per-seed values (NaNs dropped)."""
    xs = [x for x in xs if x == x]
    return t_interval(xs) if xs else (float("nan"),) * 3


def judge(side, threshold, lo, hi):
    """Whether [lo, hi] lies on the claimed side: 'below' (hi < threshold), 'above' (lo > threshold),
    'within' (inside the band threshold = (a, b)), 'outside' (misses the band); None for 'report'."""
    return {
        "below": lambda: hi < threshold,
        "above": lambda: lo > threshold,
        "within": lambda: threshold[0] <= lo and hi <= threshold[1],
        "outside": lambda: hi < threshold[0] or lo > threshold[1],
        "report": lambda: None,
    }[side]()


def other_side(side, threshold, lo, hi):
    """Whether [lo, hi] lies wholly on the failing side of the threshold (the control's test)."""
    return {
        "below": lambda: lo >= threshold,
        "above": lambda: hi <= threshold,
        "within": lambda: judge("outside", threshold, lo, hi),
        "outside": lambda: judge("within", threshold, lo, hi),
    }[side]()


def scaled(threshold, f):
    """The threshold at f times itself; a band (a, b) widens to (a / f, b f) for f > 1."""
    if isinstance(threshold, (tuple, list)):
        return (threshold[0] / f, threshold[1] * f)
    return threshold * f


def reading_of(c, kind, threshold):
    """The claim's reading (and whether it holds) against `threshold`, its control judged against the
    same: what claim stores, and what it stores again at each FACTORS multiple of the threshold."""
    lo, hi = c["interval"]
    ok = judge(c["side"], threshold, lo, hi)
    ctl = c.get("control")
    if ok is None:
        return REPORTED, None, None
    if kind == PAIRED:
        rev = judge({"below": "above", "above": "below"}[c["side"]], threshold, lo, hi)
        return (SEPARATES if ok else REVERSED if rev else NO_SEPARATION), ok, None
    if kind in (SANITY, CONTRAST):
        return f"{kind}: {'holds' if ok else 'fails'}", ok, None
    away = ctl is not None and other_side(c["side"], threshold, *ctl["interval"])
    return (
        (FAILS if not ok else EVIDENCE if away else NOT_DISCRIMINATING),
        ok,
        (away if ctl is not None else None),
    )


def claim(statement, values, side, threshold, control=None, kind=None):
    """One sub-claim over seeds. control = (label, per-seed values of the same statistic on the control
    arm) is judged against the same threshold; kind: CONTRAST (the claim compares with its control
    itself), SANITY (holds for any correct estimator: not evidence), PAIRED (values are per-seed
    differences LN − control, judged against 0: see paired) or None (a claim about LN). A nonzero
    threshold's reading is stored again at each FACTORS multiple of it (`at_threshold`)."""
    m, lo, hi = interval(values)
    c = dict(statement=statement, mean=m, interval=[lo, hi], per_seed=list(values), side=side)
    c["threshold"] = threshold
    if control is not None:
        cm, clo, chi = interval(control[1])
        c["control"] = dict(label=control[0], mean=cm, interval=[clo, chi])
        c["control"]["per_seed"] = list(control[1])
        c["control"]["pass"] = judge(side, threshold, clo, chi)
    c["reading"], c["pass"], away = reading_of(c, kind, threshold)
    if away is not None:
        c["control"]["other_side"] = away
        c["evidence_between"] = evidence_between(side, c["interval"], c["control"]["interval"])
    if c["pass"] is not None and threshold:
        c["at_threshold"] = [
            dict(factor=f, threshold=scaled(threshold, f), reading=reading_of(c, kind, t)[0])
            for f in FACTORS
            for t in [scaled(threshold, f)]
        ]
    return c


def evidence_between(side, ln, control):
    """The thresholds at which a claim with a control reads evidence: between LN's and the control's
    facing bounds ([LN's upper, control's lower] for 'below', [control's upper, LN's lower] for
    'above'); None when the two intervals overlap or the side is a band."""
    if side == "below" and ln[1] < control[0]:
        return [ln[1], control[0]]
    if side == "above" and control[1] < ln[0]:
        return [control[1], ln[0]]
    return None


def paired(statement, ln, control, side, label):
    """The per-seed contrast LN − control (same seeds, same streams) over seeds, against 0: side
    'below' when the theorem predicts LN's statistic smaller, 'above' larger. Stores both arms' own
    intervals too (`arms`)."""
    assert len(ln) == len(control), "paired values must be matched seed by seed"
    c = claim(statement, [a - b for a, b in zip(ln, control)], side, 0.0, kind=PAIRED)
    c["arms"] = {"LN": interval(ln), label: interval(control)}
    return c


def state(claims):
    """A check's state from its sub-claims: None when none has a verdict (reported only); FAILS when a
    claim, contrast or sanity check fails; PASSES with a discriminating row and no reversed paired
    contrast; MIXED with both; else NOT_DISCRIMINATING."""
    judged = [c for c in claims if c["pass"] is not None]
    if not judged:
        return None
    if any(not c["pass"] for c in judged if not c["reading"].startswith(PAIRED)):
        return FAILS
    found = any(c["reading"] in DISCRIMINATING for c in judged)
    reversed_ = any(c["reading"] == REVERSED for c in judged)
    if found:
        return MIXED if reversed_ else PASSES
    return NOT_DISCRIMINATING


def entry(check, claims, model_free=False):
    """A check: its docstring, its sub-claims, its state; pass is True only when it PASSES (a
    discriminating row, nothing failing), None for reported rows only; evidence = how many sub-claims
    separate LN (or the premise) from the control. model_free: synthetic streams only, no model."""
    s = state(claims)
    return {
        "claim": " ".join(check.__doc__.split()),
        "claims": claims,
        "state": s or REPORTED,
        "pass": None if s is None else s == PASSES,
        "evidence": sum(c["reading"] in DISCRIMINATING for c in claims),
        "model_free": model_free,
    }


def all_pass(checks):
    """Whether every check with a verdict passes (with a discriminating row)."""
    return all(c["pass"] for c in checks.values() if c["pass"] is not None)


if __name__ == "__main__":
    ln, no_ln, other = [0.010, 0.012, 0.011], [0.031, 0.029, 0.033], [0.30, 0.28, 0.35]
    for label, ctl in (("no LN, |cos| near 0 too", no_ln), ("a control far from 0", other)):
        c = claim("mean |cos| <= 0.1", ln, "below", 0.1, (label, ctl))
        p = paired("LN - control", ln, ctl, "below", label)
        print(
            f"LN {c['mean']:.3f} [{c['interval'][0]:.3f}, {c['interval'][1]:.3f}]; {label} "
            f"{c['control']['mean']:.3f}: {c['reading']} (at 0.08 / 0.12: "
            f"{' / '.join(a['reading'] for a in c['at_threshold'])}); LN - control "
            f"{p['mean']:.3f} [{p['interval'][0]:.3f}, {p['interval'][1]:.3f}]: {p['reading']}"
        )
        alone = entry(claim, [c])
        print(f"    a check of that claim alone: {alone['state']}, stored pass {alone['pass']}")
