"""The helpers every result page uses: stored runs and JSON read once, numbers written one way, paired
differences over the requests two runs share and how they read.

A page's template (results/templates/) calls these by name inside `{{ … }}`; its page module
(results/page_<name>.py) imports them to build its tables. Paired intervals come from the runs'
stored `per_request` values (lab/intervals.py): 95 % Student-t over the requests both runs evaluated.

How a difference reads (`word`): "ahead" or "behind" when its 95 % interval excludes 0, "not
distinguishable here" when it does not; "marginally ahead/behind" when the bound nearest 0 is within
MARGINAL (0.1 point) of it; and ", not after Holm" when the ordering does not survive Holm's
correction over every comparison the page reads ("ahead, not after Holm"). The page's comparisons are collected on a first
rendering (`begin_page`), adjusted (`adjust`), and the page rendered again with the adjusted readings;
`family()` says how many there were and how many orderings hold after the correction.
"""

import csv
import json
import sys
from functools import lru_cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lab.intervals import holm, matched, p_value, paired, reading, t_interval  # noqa: E402

HERE = Path(__file__).resolve().parent
SHORT = {"efficacy": "Eff", "generalization": "Gen", "specificity": "Spe", "retain": "retain"}
MARGINAL = 0.1  # points: an ordering whose interval's bound is this close to 0 is marginal
ALPHA = 0.05  # the family-wise error rate of Holm's correction
HOLM = ", not after Holm"  # the mark of an ordering Holm's correction drops
# the comparisons of the page being rendered: {key: p}, and after adjust() {key: Holm-adjusted p}
_PAGE = {"family": {}, "holm": None}


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


@lru_cache(maxsize=None)
def paired_stats(a, b, metric):
    """(mean, lo, hi, n, p) of a − b over the requests both runs evaluated."""
    xa, xb = matched(run(a)["per_request"], run(b)["per_request"], metric)
    if len(xa) < 2:
        raise ValueError(f"{a} and {b} share {len(xa)} evaluated requests: nothing to pair")
    m, lo, hi = paired(xa, xb)
    return m, lo, hi, len(xa), p_value([x - y for x, y in zip(xa, xb)])


def pair(a, b, metric="efficacy"):
    """(mean, lo, hi, n): a − b over the requests both runs evaluated, 95 % paired t-interval."""
    return paired_stats(a, b, metric)[:4]


def begin_page():
    """Start collecting the comparisons of a page (its first rendering)."""
    _PAGE["family"], _PAGE["holm"] = {}, None


def adjust():
    """Holm-adjust the p-values of the comparisons collected since begin_page()."""
    keys = list(_PAGE["family"])
    _PAGE["holm"] = dict(zip(keys, holm([_PAGE["family"][k] for k in keys])))


def note(key, lo, hi, p):
    """Count a comparison on this page (its key, interval and p) and return how it reads."""
    _PAGE["family"][key] = p
    return word(lo, hi, key)


def compared(a, b, metric):
    """Count the paired comparison a − b on this page; (mean, lo, hi, word)."""
    m, lo, hi, _, p = paired_stats(a, b, metric)
    return m, lo, hi, note((*sorted((a, b)), metric), lo, hi, p)


def holds(key):
    """Whether a comparison keeps its ordering after Holm's correction over the page (True on the
    first rendering, before the page's comparisons are all known)."""
    adjusted = _PAGE["holm"]
    return adjusted is None or len(adjusted) < 2 or adjusted[key] < ALPHA


def word(lo, hi, key=None):
    """How an interval of a difference reads: 'ahead', 'marginally behind', 'ahead, not after
    Holm', 'not distinguishable here'."""
    raw = reading(lo, hi)
    if raw == "not distinguishable here":
        return raw
    out = ("marginally " if min(abs(lo), abs(hi)) <= MARGINAL else "") + raw
    return out if key is None or holds(key) else out + HOLM


def family():
    """'This page reads 44 paired comparisons …': how many, and how many orderings hold after
    Holm's correction over them."""
    fam, adjusted = _PAGE["family"], _PAGE["holm"] or {}
    n = len(fam)
    raw = sum(p < ALPHA for p in fam.values())
    kept = sum(adjusted.get(k, 1.0) < ALPHA for k in fam)
    if n < 2:
        return f"This page reads {n} comparison{'s' * (n != 1)}, so no correction applies."
    return (
        f"This page reads {n} comparisons, each with its own 95 % interval; about {f(n * ALPHA, 1)} "
        f"would exclude 0 by chance alone if no difference were real. {raw} exclude 0; after Holm's "
        f"correction over the {n} (family-wise 95 %), {kept} of them keep their ordering, and a "
        'reading marked ", not after Holm" is one that does not. An ordering whose bound is within '
        f'{f(MARGINAL, 1)} of 0 reads "marginally" ahead or behind: a weak reading, not a finding.'
    )


def interval(m, lo, hi, d=1):
    """'+2.7 [−0.7, +6.1]'; one more decimal while a bound would print as ±0.0, so that a bound's
    side of 0 stays visible."""
    while d < 4 and 0 < min(abs(lo), abs(hi)) < 0.5 * 10**-d:
        d += 1
    return f"{s(m, d)} [{s(lo, d)}, {s(hi, d)}]"


def D(a, b, metric="efficacy", d=1):
    """'+2.7 [−0.7, +6.1]': a − b with its paired 95 % interval (counted as a comparison)."""
    m, lo, hi, _ = compared(a, b, metric)
    return interval(m, lo, hi, d)


def Dw(a, b, metric="efficacy", d=1):
    """D with its reading when the interval excludes 0: '+2.7 [+0.7, +6.1] ahead'."""
    m, lo, hi, w = compared(a, b, metric)
    return interval(m, lo, hi, d) + ("" if w == "not distinguishable here" else f" {w}")


def order(a, b, metric="efficacy"):
    """How a reads against b on one metric (word): 'ahead', 'marginally behind', 'not
    distinguishable here', with ', not after Holm' where the correction drops the ordering."""
    return compared(a, b, metric)[3]


def ordering(a, b, metric="efficacy"):
    """The raw ordering, 'ahead', 'behind' or 'not distinguishable here' (for a page's pre-stated
    tests, which were stated on the single intervals); counted as a comparison."""
    _, lo, hi, _ = compared(a, b, metric)
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
    return grouped([(SHORT[m], order(a, b, m)) for m in metrics])


def grouped(words):
    """[(metric's short name, word)] as 'ahead on Eff and Gen; Spe not distinguishable here'."""
    by = {}
    for short, w in words:
        by.setdefault(w, []).append(short)
    words = sorted(by, key=lambda w: ("behind" in w, w))  # orderings ahead first, then behind
    out = [
        f"{w.removesuffix(HOLM)} on {listed(by[w])}{HOLM * w.endswith(HOLM)}"
        for w in words
        if w != "not distinguishable here"
    ]
    if "not distinguishable here" in by:
        out.append(f"{listed(by['not distinguishable here'])} not distinguishable here")
    return "; ".join(out)


def lmean(row, prefix, absval=False):
    """The mean over layers of a trajectory row's columns `<prefix><layer>` (NaN and blanks left
    out); None when the row has none."""
    xs = [x for k, x in row.items() if k.startswith(prefix) and isinstance(x, float) and x == x]
    xs = [abs(x) for x in xs] if absval else xs
    return sum(xs) / len(xs) if xs else None


def egs(name):
    """The mean of a run's post-edit Eff, Gen and Spe: the criterion by which the better of two stored
    runs of one code (a replica's two lrs) is picked."""
    return sum(v(name, m) for m in ("efficacy", "generalization", "specificity")) / 3


def better(*names):
    """The stored run among `names` with the highest egs()."""
    return max((n for n in names if have(n)), key=egs)


def lr_of(name):
    """A run's lr as the commands write it: 3e-4, 2.5e-4, 3.75e-5."""
    m, e = f"{run(name)['config']['lr']:.2e}".split("e")
    return f"{m.rstrip('0').rstrip('.')}e{int(e)}"


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
    Dw=Dw,
    order=order,
    ordering=ordering,
    word=word,
    family=family,
    ti=ti,
    paper=paper,
    t_interval=t_interval,
    have=have,
    egs=egs,
    better=better,
    lr_of=lr_of,
    sweep_row=sweep_row,
    diffs=diffs,
    listed=listed,
    reads=reads,
    grouped=grouped,
    SHORT=SHORT,
    MARGINAL=MARGINAL,
)
