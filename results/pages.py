"""The result pages, generated from the stored runs: every number on results/*.md is computed here.

Each page is a template, `results/templates/<page>.md` (the front page: `templates/top/README.md`). Text between `{{` and `}}` is a Python
expression, evaluated with the helpers below over the stored runs (`results/runs/*/results.json`,
`trajectory.csv`, `results/theory/*/theory.json` and the other stored JSON), and replaced by its value.
An optional first block `<!-- setup ... -->` is Python run before the page (aliases, page-only helpers)
and is not written. Paired intervals come from the runs' stored `per_request` values
(lab/intervals.py): 95 % Student-t over the requests both runs evaluated.

    python results/pages.py            # write every page
    python results/pages.py --check    # exit 1 naming each page that differs from its template's output
"""

import argparse
import csv
import json
import re
import sys
from functools import lru_cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lab.intervals import matched, paired, reading, t_interval  # noqa: E402

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
SETUP = re.compile(r"\A<!-- setup\n(.*?)\n-->\n", re.S)
FIELD = re.compile(r"\{\{(.*?)\}\}", re.S)
# the paper's numbering (Thm 3.8, Eq. 5–6, App. B.6.4, Lemma D.1, Table 4), not results
REFERENCE = re.compile(
    r"\b(?:Thm|Theorem|Thms|Cor|Corollary|Lemma|Eq|Eqs|Fig|Figs|Figure|Figures|Table|Tables|App|"
    r"Appendix|Remark|Assumption|Algorithm|Sec|Section)\.?\s*[A-Z]?\d+(?:[./–-][A-Z]?\d+)*"
    r"|\b[A-D]\.\d+(?:\.\d+)*|§\s*\d+(?:\.\d+)*"
)


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
    with open(HERE / "runs" / name / "trajectory.csv", newline="", encoding="utf-8") as f:
        return [{k: _num(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return s


def v(name, metric="efficacy", stage="post"):
    """One stored metric of a run: stage 'post' (after the stream) or 'pre' (the unedited model)."""
    return run(name)[stage][metric]


def f(x, d=1):
    """A number with d decimals; a missing one as '–'."""
    return "–" if x is None else f"{x:.{d}f}".replace("-", "−")


def s(x, d=1):
    """A signed number with d decimals (+1.2, −0.3)."""
    return ("+" if x >= 0 else "") + f(x, d)


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


def D(a, b, metric="efficacy", d=1):
    """'+2.7 [−0.7, +6.1]': a − b with its paired 95 % interval; one more decimal while a bound would
    print as ±0.0, so that a bound's side of 0 stays visible."""
    m, lo, hi, _ = pair(a, b, metric)
    while d < 4 and 0 < min(abs(lo), abs(hi)) < 0.5 * 10**-d:
        d += 1
    return f"{s(m, d)} [{s(lo, d)}, {s(hi, d)}]"


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


SHORT = {"efficacy": "Eff", "generalization": "Gen", "specificity": "Spe", "retain": "retain"}


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


def render(template):
    """A page's text from its template: run the setup block, then evaluate every {{ field }}."""
    ns = dict(HELPERS)
    m = SETUP.match(template)
    if m:
        exec(m.group(1), ns)
        template = template[m.end() :]

    def field(match):
        try:
            return str(eval(match.group(1).strip(), ns))
        except Exception as e:
            raise ValueError(f"{{{{{match.group(1).strip()}}}}}: {type(e).__name__}: {e}") from e

    return FIELD.sub(field, template)


def hand_typed(template):
    """Decimal numbers and percentages written outside fields, code and links: a result number typed
    by hand (the test allows none; a number quoted from the paper goes through paper())."""
    t = SETUP.sub("", template)
    for pattern in (
        FIELD,
        re.compile(r"```.*?```", re.S),
        re.compile(r"`[^`]*`"),
        re.compile(r"\]\([^)]*\)"),
    ):
        t = pattern.sub(" ", t)
    t = REFERENCE.sub(" ", t).replace("95 %", " ")  # the paper's numbering; the intervals' level
    return re.findall(r"(?<![\w.])\d+\.\d+|\d+ ?%", t)  # not a name's version (Qwen2.5)


def pages():
    """{page path: generated text} for every template: templates/X.md -> results/X.md, and
    templates/top/README.md -> the repository's README.md (the front page's table and figures)."""
    out = {HERE / t.name: render(t.read_text("utf-8")) for t in sorted(TEMPLATES.glob("*.md"))}
    front = TEMPLATES / "top" / "README.md"
    if front.exists():
        out[HERE.parent / "README.md"] = render(front.read_text("utf-8"))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="compare, do not write")
    a = p.parse_args(argv)
    stale = []
    for path, text in pages().items():
        old = path.read_text("utf-8") if path.exists() else None
        if old != text:
            stale.append(path.name)
            if not a.check:
                path.write_text(text, "utf-8")
    verb = "differ from their templates" if a.check else "written"
    print(f"{len(stale)} page(s) {verb}" + (f": {', '.join(stale)}" if stale else ""))
    return 1 if a.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
