"""How a theory claim reads (§3's theorems as checks, theory_checks.py): a sub-claim's 95 % Student-t
interval over seeds against a threshold fixed before the runs, and the same statistic on a control.

A claim holds when its interval lies on the claimed side of the threshold; it is evidence only when the
control (no LN, or a stream off the theorem's premise) falls wholly on the other side of the same
threshold, and otherwise "holds, not discriminating". Contrasts (the claim itself compares two arms),
sanity checks (true for any correct estimator) and reported rows (no verdict) are labelled as such.

    python -m lab.verdicts    # a claim that its control meets too, and one its control does not
"""

from lab.intervals import t_interval

# How a sub-claim reads. Evidence needs the same statistic, on the control (no LN, or a stream off
# the theorem's premise), to fall on the other side of the same threshold.
EVIDENCE, NOT_DISCRIMINATING, FAILS = "evidence", "holds, not discriminating", "fails"
CONTRAST, SANITY, REPORTED = "contrast", "sanity check", "reported"


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


def claim(statement, values, side, threshold, control=None, kind=None):
    """One sub-claim over seeds. control = (label, per-seed values of the same statistic on the control
    arm) is judged against the same threshold; kind: CONTRAST (the claim compares with its control
    itself), SANITY (holds for any correct estimator: not evidence) or None (a claim about LN)."""
    m, lo, hi = interval(values)
    ok = judge(side, threshold, lo, hi)
    c = {
        "statement": statement,
        "mean": m,
        "interval": [lo, hi],
        "per_seed": list(values),
        "side": side,
        "threshold": threshold,
        "pass": ok,
    }
    if control is not None:
        cm, clo, chi = interval(control[1])
        c["control"] = {
            "label": control[0],
            "mean": cm,
            "interval": [clo, chi],
            "per_seed": list(control[1]),
            "pass": judge(side, threshold, clo, chi),
            "other_side": other_side(side, threshold, clo, chi),
        }
    c["reading"] = reading_of(c, kind)
    return c


def reading_of(c, kind):
    """EVIDENCE only when the claim holds and its control falls on the other side of the threshold."""
    if c["pass"] is None:
        return REPORTED
    if kind in (SANITY, CONTRAST):
        return f"{kind}: {'holds' if c['pass'] else 'fails'}"
    if not c["pass"]:
        return FAILS
    return EVIDENCE if c.get("control", {}).get("other_side") else NOT_DISCRIMINATING


def entry(check, claims):
    """A check: its docstring, its sub-claims; pass = every sub-claim with a verdict passes, evidence =
    how many sub-claims separate LN (or the premise) from the control."""
    return {
        "claim": " ".join(check.__doc__.split()),
        "claims": claims,
        "pass": all(judged)
        if (judged := [c["pass"] for c in claims if c["pass"] is not None])
        else None,  # a check of reported rows only judges nothing
        "evidence": sum(c["reading"] in (EVIDENCE, f"{CONTRAST}: holds") for c in claims),
    }


if __name__ == "__main__":
    ln, no_ln, other = [0.010, 0.012, 0.011], [0.031, 0.029, 0.033], [0.30, 0.28, 0.35]
    for label, ctl in (("no LN, |cos| near 0 too", no_ln), ("a control far from 0", other)):
        c = claim("mean |cos| <= 0.1", ln, "below", 0.1, (label, ctl))
        print(
            f"LN {c['mean']:.3f} [{c['interval'][0]:.3f}, {c['interval'][1]:.3f}]; {label} "
            f"{c['control']['mean']:.3f}: {c['reading']}"
        )
