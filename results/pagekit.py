"""The helpers every result page uses: stored runs and JSON read once, numbers written one way, paired
differences over the requests two runs share and how they read.

A page's template (results/templates/) calls these by name inside `{{ … }}`; its page module
(results/page_<name>.py) imports them to build its tables. Paired intervals come from the runs'
stored `per_request` values (lab/intervals.py): 95 % Student-t over the requests both runs evaluated.
"""

import csv
import json
import sys
from functools import lru_cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lab.intervals import matched, paired, reading, t_interval  # noqa: E402

HERE = Path(__file__).resolve().parent
SHORT = {"efficacy": "Eff", "generalization": "Gen", "specificity": "Spe", "retain": "retain"}


@lru_cache(maxsize=None)
def J(path):
    """A stored JSON file, by its path under results/ (e.g. 'bench.json', 'theory/x/theory.json')."""
    return json.loads((HERE / path).read_text("utf-8"))


def run(name):
    """results.json of the stored run results/runs/<name>."""
    return J(f"runs/{name}/results.json")


@lru_cache(maxsize=None)
def trajectory(name):
    """trajectory.csv of a stored run, as a list of dict rows (numbers as float where they parse)."""
    with open(HERE / "runs" / name / "trajectory.csv", newline="", encoding="utf-8") as fh:
        return [{k: _num(x) for k, x in row.items()} for row in csv.DictReader(fh)]


def _num(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return text


def v(name, metric="efficacy", stage="post"):
    """One stored metric of a run: stage 'post' (after the stream) or 'pre' (the unedited model)."""
    return run(name)[stage][metric]


def f(x, d=1):
    """A number with d decimals; a missing one as '–'."""
    return "–" if x is None else f"{x:.{d}f}".replace("-", "−")


def s(x, d=1):
    """A signed number with d decimals (+1.2, −0.3)."""
    return ("+" if x >= 0 else "") + f(x, d)


def thousands(n):
    """An integer with thousands separators: 1,487."""
    return f"{n:,}"


def per_request(name, metric):
    """{request index: value} of a run's evaluated requests."""
    pr = run(name)["per_request"]
    return dict(zip(pr["index"], pr[metric]))


def pair(a, b, metric="efficacy"):
    """(mean, lo, hi, n): a − b over the requests both runs evaluated, 95 % paired t-interval."""
    xa, xb = matched(run(a)["per_request"], run(b)["per_request"], metric)
    if len(xa) < 2:
        raise ValueError(f"{a} and {b} share {len(xa)} evaluated requests: nothing to pair")
    m, lo, hi = paired(xa, xb)
    return m, lo, hi, len(xa)


def interval(m, lo, hi, d=1):
    """'+2.7 [−0.7, +6.1]'; one more decimal while a bound would print as ±0.0, so that a bound's
    side of 0 stays visible."""
    while d < 4 and 0 < min(abs(lo), abs(hi)) < 0.5 * 10**-d:
        d += 1
    return f"{s(m, d)} [{s(lo, d)}, {s(hi, d)}]"


def D(a, b, metric="efficacy", d=1):
    """'+2.7 [−0.7, +6.1]': a − b with its paired 95 % interval."""
    m, lo, hi, _ = pair(a, b, metric)
    return interval(m, lo, hi, d)


def order(a, b, metric="efficacy"):
    """'ahead', 'behind' or 'not distinguishable here': how a reads against b on one metric."""
    _, lo, hi, _ = pair(a, b, metric)
    return reading(lo, hi)


def ti(xs, d=2):
    """'m [lo, hi]': a mean and its 95 % Student-t interval (seeds as the unit)."""
    m, lo, hi = t_interval(xs)
    return f"{f(m, d)} [{f(lo, d)}, {f(hi, d)}]"


def sweep_row(table, setting, model="smollm2-135m", stage="post"):
    """The latest results/calibration.json row of a sweep setting (sweep.py appends a rerun);
    table None: any table (the pre-edit rows)."""
    rows = [
        r
        for r in J("calibration.json")
        if (r["model"], r["stage"], r["setting"]) == (model, stage, setting)
        and table in (None, r["table"])
    ]
    if not rows:
        raise ValueError(f"no {stage} row of {setting} in table {table} for {model}")
    return rows[-1]


def have(name):
    """Whether the run results/runs/<name> is stored (a page may wait for a run still in a queue)."""
    return (HERE / "runs" / name / "results.json").exists()


def diffs(a, b, metrics=tuple(SHORT)):
    """'Eff +2.7 [−0.7, +6.1], Gen …': a − b on each metric, paired."""
    return ", ".join(f"{SHORT[m]} {D(a, b, m)}" for m in metrics)


def listed(xs):
    """'a', 'a and b', 'a, b and c'."""
    return xs[0] if len(xs) == 1 else ", ".join(xs[:-1]) + " and " + xs[-1]


def reads(a, b, metrics=tuple(SHORT)):
    """How a reads against b: 'ahead on Eff and Gen; Spe and retain not distinguishable here'."""
    by = {}
    for m in metrics:
        by.setdefault(order(a, b, m), []).append(SHORT[m])
    out = [f"{w} on {listed(by[w])}" for w in ("ahead", "behind") if w in by]
    if "not distinguishable here" in by:
        out.append(f"{listed(by['not distinguishable here'])} not distinguishable here")
    return "; ".join(out)


def lmean(row, prefix, absval=False):
    """The mean over layers of a trajectory row's columns `<prefix><layer>` (NaN and blanks left
    out); None when the row has none."""
    xs = [x for k, x in row.items() if k.startswith(prefix) and isinstance(x, float) and x == x]
    xs = [abs(x) for x in xs] if absval else xs
    return sum(xs) / len(xs) if xs else None


def paper(text):
    """A number quoted from the paper (not measured here): written as given."""
    return str(text)


HELPERS = dict(
    J=J,
    run=run,
    trajectory=trajectory,
    v=v,
    f=f,
    s=s,
    thousands=thousands,
    per_request=per_request,
    pair=pair,
    D=D,
    order=order,
    ti=ti,
    paper=paper,
    t_interval=t_interval,
    have=have,
    sweep_row=sweep_row,
    diffs=diffs,
    listed=listed,
    reads=reads,
    SHORT=SHORT,
)
