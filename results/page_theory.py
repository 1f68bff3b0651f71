"""The names of results/theory.md: the theory checks' rows and readings from the two stored
theory.json (results/theory/<model>/), as lab/verdicts.py judged them: the model-free synthetic rows
apart from each model's, each check's state, the paired contrasts LN − control, and every thresholded
verdict again at ±20 % of its threshold."""

from lab.verdicts import DISCRIMINATING, FACTORS, PAIRED
from pagekit import J

MODELS = ("smollm2-135m", "gemma3-270m")


def theory(model):
    return J(f"theory/{model}/theory.json")


def g3(x):
    return "–" if x is None or x != x else f"{x:.4g}".replace("-", "−")


def iv(c):
    lo, hi = c["interval"]
    return f"{g3(c['mean'])} [{g3(lo)}, {g3(hi)}]"


def find(t, check, words):
    """The sub-claim of a check whose statement contains `words`."""
    hits = [c for c in t["checks"][check]["claims"] if words in c["statement"]]
    assert len(hits) == 1, (check, words, len(hits))
    return hits[0]


def escape(text):
    return text.replace("|", "\\|")


def value(c):
    """A claim's cell: its interval, its control's (or, for a paired contrast, both arms' means and
    the difference LN − control), and its reading when it has a verdict."""
    if c["reading"].startswith(PAIRED):
        (_, ln), (label, ctl) = c["arms"].items()  # LN's (mean, lo, hi), then the control's
        text = f"LN {g3(ln[0])}, {label} {g3(ctl[0])}; LN − control {iv(c)}"
    else:
        ctl = c.get("control")
        text = iv(c) + (f"; {ctl['label']}: {iv(ctl)}" if ctl else "")
    return f"{text} — **{c['reading']}**" if c["pass"] is not None else text


def cell(t, check, words):
    return value(find(t, check, words))


def model_checks(t):
    return {k: c for k, c in t["checks"].items() if not c["model_free"]}


def free_checks(t):
    return {k: c for k, c in t["checks"].items() if c["model_free"]}


def model_rows():
    """One table row per model-based claim, SmolLM2's and Gemma's cells side by side."""
    S, G = (theory(m) for m in MODELS)
    out = []
    for name, check in model_checks(S).items():
        for i, c in enumerate(check["claims"]):
            cells = " | ".join(cell(t, name, c["statement"]) for t in (S, G))
            out.append(f"| {name if i == 0 else ''} | {escape(c['statement'])} | {cells} |")
    return "\n".join(out)


def synthetic_same():
    """Whether the model-free rows are the same numbers in both files (the same code and seeds)."""
    S, G = (free_checks(theory(m)) for m in MODELS)
    strip = lambda cs: [[(c["statement"], c["per_seed"]) for c in x["claims"]] for x in cs.values()]
    return "checked: identical" if strip(S) == strip(G) else "they differ: read each file"


def synthetic_rows():
    """One row per model-free claim (SmolLM2's file; synthetic_same says Gemma's holds the same)."""
    out = []
    for name, check in free_checks(theory(MODELS[0])).items():
        for i, c in enumerate(check["claims"]):
            out.append(f"| {name if i == 0 else ''} | {escape(c['statement'])} | {value(c)} |")
    return "\n".join(out)


def counts(t, free=False):
    """How many rows read each way, over the model's checks (or the model-free ones)."""
    n = {}
    for check in (free_checks(t) if free else model_checks(t)).values():
        for c in check["claims"]:
            n[c["reading"]] = n.get(c["reading"], 0) + 1
    return ", ".join(f"{k} {x}" for k, x in sorted(n.items(), key=lambda kv: (-kv[1], kv[0])))


def head(t):
    return f"{t['model']} ({len(t['seeds'])} seeds, {t['seconds'] / 60:.0f} min)"


def m(t, check, words):
    return g3(find(t, check, words)["mean"])


def c_iv(t, check, words):
    return iv(find(t, check, words))


def ctl_iv(t, check, words):
    return iv(find(t, check, words)["control"])


def rd(t, check, words):
    return find(t, check, words)["reading"]


def short(statement):
    """A claim's statement without its threshold: what it measures."""
    for cut in (", per seed", " <", " >", " within"):
        statement = statement.split(cut)[0]
    return escape(statement.rstrip(" ,"))


def separating(t, free=False):
    """The rows that separate LN (or the premise) from a control, over the model's checks (or the
    model-free ones)."""
    hits = [
        f"{name} ({short(c['statement'])})"
        for name, ch in (free_checks(t) if free else model_checks(t)).items()
        for c in ch["claims"]
        if c["reading"] in DISCRIMINATING
    ]
    return "; ".join(hits) or "none"


def state(t, check):
    c = t["checks"][check]
    return f"{c['state']} ({c['evidence']} discriminating)"


def state_rows():
    """One row per check: its state on each model, and what `pass` stores."""
    S, G = (theory(m) for m in MODELS)
    out = []
    for name, c in S["checks"].items():
        free = " (model-free: the same rows in both files)" if c["model_free"] else ""
        cells = " | ".join(
            f"{state(t, name)}, `pass: {jsonish(t['checks'][name]['pass'])}`" for t in (S, G)
        )
        out.append(f"| {name}{free} | {cells} |")
    return "\n".join(out)


def jsonish(x):
    return {True: "true", False: "false", None: "null"}[x]


def threshold_text(x):
    if isinstance(x, (list, tuple)):
        return f"[{g3(x[0])}, {g3(x[1])}]"
    return g3(x)


def sensitivity_rows():
    """One row per thresholded model claim: the reading on each model at 0.8x, 1x and 1.2x the
    threshold, in bold where it differs from the reading at the threshold itself."""
    S, G = (theory(m) for m in MODELS)
    out = []
    for name, check in model_checks(S).items():
        for c in check["claims"]:
            if "at_threshold" not in c:
                continue
            cells = []
            for t in (S, G):
                x = find(t, name, c["statement"])
                at = {a["factor"]: a["reading"] for a in x["at_threshold"]}
                mark = lambda r, x=x: f"**{r}**" if r != x["reading"] else r
                cells.append(" / ".join([mark(at[FACTORS[0]]), x["reading"], mark(at[FACTORS[1]])]))
            low, high = (threshold_text(a["threshold"]) for a in c["at_threshold"])
            ts = f"{low} / {threshold_text(c['threshold'])} / {high}"
            out.append(f"| {name} | {short(c['statement'])} | {ts} | {' | '.join(cells)} |")
    return "\n".join(out)


def flips(t, free=False):
    """The thresholded rows whose reading changes at 0.8x or 1.2x the threshold, over the model's
    checks (or the model-free ones)."""
    hits = []
    for name, check in (free_checks(t) if free else model_checks(t)).items():
        for c in check["claims"]:
            for a in c.get("at_threshold", []):
                if a["reading"] != c["reading"]:
                    hits.append(
                        f"{name} ({short(c['statement'])}: {a['reading']} at "
                        f"{threshold_text(a['threshold'])})"
                    )
    return "; ".join(hits) or "none"


def between(t, check, words):
    """The thresholds at which a row with a control would read evidence, or why none does."""
    r = find(t, check, words).get("evidence_between")
    return f"[{g3(r[0])}, {g3(r[1])}]" if r else "none (the intervals overlap)"


def at(t, check, words, factor):
    """A claim's reading at `factor` times its threshold, and that threshold."""
    a = {a["factor"]: a for a in find(t, check, words)["at_threshold"]}[factor]
    return f"{a['reading']} at {threshold_text(a['threshold'])}"


def below_one(t, check, words):
    """How far a ratio's mean lies below 1, in percent."""
    return f"{100 * (1 - find(t, check, words)['mean']):.2g} %"


def seeds_on_side(t, check, words):
    """On how many seeds a paired contrast lies on its predicted side of 0 ('k of n')."""
    c = find(t, check, words)
    k = sum((x < 0) if c["side"] == "below" else (x > 0) for x in c["per_seed"])
    return f"{k} of {len(c['per_seed'])}"


def rel0(t, arm):
    """An arm's first-step |Delta|/|W|, mean over seeds."""
    return g3(sum(r[arm]["rel0"] for r in t["runs"]) / len(t["runs"]))


def added_min(t):
    """Minutes the arms --complete added to a stored run took, all together."""
    return f"{sum(a['seconds'] for a in t['added_arms'].values()) / 60:.0f}"


def judged(t):
    """How many model rows carry a verdict (the page's seed-level readings)."""
    return sum(c["pass"] is not None for ch in model_checks(t).values() for c in ch["claims"])


def context():
    S, G = (theory(m) for m in MODELS)
    return dict(
        S=S,
        G=G,
        pct=f"{round(100 * (FACTORS[1] - 1))} %",
        factors=" / ".join(f"{f:g}" for f in FACTORS),
        factors3=f"{FACTORS[0]:g} / 1 / {FACTORS[1]:g}",
        model_rows=model_rows,
        synthetic_rows=synthetic_rows,
        synthetic_same=synthetic_same,
        state_rows=state_rows,
        sensitivity_rows=sensitivity_rows,
        counts=counts,
        head=head,
        m=m,
        c_iv=c_iv,
        ctl_iv=ctl_iv,
        separating=separating,
        rd=rd,
        state=state,
        flips=flips,
        between=between,
        at=at,
        below_one=below_one,
        seeds_on_side=seeds_on_side,
        rel0=rel0,
        judged=judged,
        added_min=added_min,
        jsonish=jsonish,
        g3=g3,
        iv=iv,
        find=find,
        cell=cell,
    )
