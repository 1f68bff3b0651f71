"""The result pages, generated from the stored runs: every number on results/*.md is computed here.

Each page is a Jinja2 template, `results/templates/<page>.md` (the front page: `templates/top/README.md`),
and a page module, `results/page_<page>.py` (`page_readme.py` for results/README.md, `page_top.py` for
the front page), whose `context()` returns the names the template uses: its tables, readings and
page-only helpers. A template holds text and expressions only — `{{ f(v("zsre_full")) }}` — and every
computation lives in the modules, under ruff and the function-length test. The helpers every page shares
(stored runs and JSON, number formats, paired intervals and their readings) are in `pagekit.py`. A page
is rendered twice: the first pass collects the comparisons it reads, the second reads each of them
after Holm's correction over all of them (pagekit.family).

    python results/pages.py            # write every page
    python results/pages.py --check    # exit 1 naming each page that differs from its template's output
"""

import argparse
import builtins
import importlib
import re
import sys
from pathlib import Path

import jinja2

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
import choices  # noqa: E402
import pagekit  # noqa: E402
import rules  # noqa: E402
from pagekit import run  # noqa: E402, F401  (the tests read a stored run through pages.run)

TEMPLATES = HERE / "templates"
FIELD = re.compile(r"\{\{(.*?)\}\}", re.S)
# Python's builtins a template may call, besides Jinja2's own (range, dict)
BUILTINS = {
    k: getattr(builtins, k)
    for k in ("abs", "all", "any", "len", "list", "max", "min", "round", "sorted", "str", "sum")
}
ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
)
# the paper's numbering (Thm 3.8, Eq. 5–6, App. B.6.4, Lemma D.1, Table 4), not results
REFERENCE = re.compile(
    r"\b(?:Thm|Theorem|Thms|Cor|Corollary|Lemma|Eq|Eqs|Fig|Figs|Figure|Figures|Table|Tables|App|"
    r"Appendix|Remark|Assumption|Algorithm|Sec|Section)\.?\s*[A-Z]?\d+(?:[./–-][A-Z]?\d+)*"
    r"|\b[A-D]\.\d+(?:\.\d+)*|§\s*\d+(?:\.\d+)*"
)


def module(template):
    """The page module of a template: templates/X.md -> page_x, templates/top/README.md -> page_top."""
    name = "top" if template.parent.name == "top" else template.stem.lower()
    return importlib.import_module(f"page_{name}")


def render(template, names=None):
    """A page's text from its template's text: every {{ expression }} evaluated over the shared
    helpers and `names` (a page module's context())."""
    shared = {"chose": choices.statement, "rule_caveat": rules.caveat}
    ns = {**BUILTINS, **pagekit.HELPERS, **shared, **(names or {})}
    return ENV.from_string(template).render(ns)


def hand_typed(template):
    """Decimal numbers and percentages written outside fields, code and links: a result number typed
    by hand (the test allows none; a number quoted from the paper goes through paper())."""
    t = template
    for pattern in (
        FIELD,
        re.compile(r"```.*?```", re.S),
        re.compile(r"`[^`]*`"),
        re.compile(r"\]\([^)]*\)"),
    ):
        t = pattern.sub(" ", t)
    t = REFERENCE.sub(" ", t).replace("95 %", " ")  # the paper's numbering; the intervals' level
    return re.findall(r"(?<![\w.])\d+\.\d+|\d+ ?%", t)  # not a name's version (Qwen2.5)


def targets():
    """{template: page path}: templates/X.md -> results/X.md, and templates/top/README.md -> the
    repository's README.md (the front page's table and figures)."""
    out = {t: HERE / t.name for t in sorted(TEMPLATES.glob("*.md"))}
    front = TEMPLATES / "top" / "README.md"
    if front.exists():
        out[front] = HERE.parent / "README.md"
    return out


def page(template):
    """A page's text from its template file, rendered twice: the first rendering collects the
    comparisons the page reads, the second reads each of them after Holm's correction over all."""
    text, names = template.read_text("utf-8"), module(template).context
    pagekit.begin_page()
    render(text, names())
    pagekit.adjust()
    return render(text, names())


def pages():
    """{page path: generated text} for every template."""
    return {path: page(t) for t, path in targets().items()}


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
