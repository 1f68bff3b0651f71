"""The names of results/theory.md: the theory checks' rows and readings from the two stored
theory.json (results/theory/<model>/)."""

from pagekit import J

MODELS = ("smollm2-135m", "gemma3-270m")


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


def cell(t, check, words):
    c = find(t, check, words)
    ctl = c.get("control")
    ctl = f"; {ctl['label']}: {iv(ctl)}" if ctl else ""
    return f"{iv(c)}{ctl} — **{c['reading']}**" if c["pass"] is not None else iv(c)


def rows():
    """One table row per claim, SmolLM2's and Gemma's cells side by side."""
    S, G = (J(f"theory/{m}/theory.json") for m in MODELS)
    out = []
    for name, check in S["checks"].items():
        for i, c in enumerate(check["claims"]):
            words = c["statement"]
            cells = " | ".join(cell(t, name, words) for t in (S, G))
            out.append(
                f"| {name if i == 0 else ''} | {words.replace('|', chr(92) + '|')} | {cells} |"
            )
    return "\n".join(out)


def counts(t):
    n = {}
    for check in t["checks"].values():
        for c in check["claims"]:
            n[c["reading"]] = n.get(c["reading"], 0) + 1
    return ", ".join(f"{k} {x}" for k, x in sorted(n.items(), key=lambda kv: -kv[1]))


def head(t):
    return f"{t['model']} ({len(t['seeds'])} seeds, {t['seconds'] / 60:.0f} min)"


def m(t, check, words):
    return g3(find(t, check, words)["mean"])


def c_iv(t, check, words):
    return iv(find(t, check, words))


def ctl_iv(t, check, words):
    return iv(find(t, check, words)["control"])


def separating(t):
    hits = [
        f"{name} ({c['statement'].split(',')[0].split(' <')[0].split(' >')[0]})"
        for name, ch in t["checks"].items()
        for c in ch["claims"]
        if c["reading"] in ("evidence", "contrast: holds")
    ]
    return "; ".join(hits) or "none"


def rd(t, check, words):
    return find(t, check, words)["reading"]


def context():
    T = {m: J(f"theory/{m}/theory.json") for m in MODELS}
    return dict(
        T=T,
        S=T["smollm2-135m"],
        G=T["gemma3-270m"],
        rows=rows,
        counts=counts,
        head=head,
        m=m,
        c_iv=c_iv,
        ctl_iv=ctl_iv,
        separating=separating,
        rd=rd,
        g3=g3,
        iv=iv,
        find=find,
        cell=cell,
    )
