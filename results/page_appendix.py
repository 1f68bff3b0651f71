"""The names of results/appendix.md: App. B.6.5, B.5, B.3.3 and B.6.4, Figure 1b (cumulative.json)
and Figure 10 on SmolLM2-135M and the ZsRE evaluation split."""

from lab.intervals import p_value, t_interval
from pagekit import (
    SHORT,
    D,
    Dw,
    J,
    f,
    grouped,
    lmean,
    note,
    order,
    pair,
    per_request,
    run,
    s,
    ti,
    trajectory,
    v,
)

M4 = ("efficacy", "generalization", "specificity", "retain")
P95 = "95 %"
HIDDEN = (  # B.5's rows: (label, run)
    ("stableedit (default)", "app_default"),
    ("ultraedit (`--method ultraedit --warmup 0`)", "app_ultraedit"),
    ("no LN (`--method no_ln`)", "app_no_ln"),
    ("ft (`--method ft --lr 10`)", "app_ft"),
)
# Figure 10: size and placement runs against no warm-up (app_warm_size0)
FIG10 = [
    ("size 0", "app_warm_size0"),
    ("size 250", "app_warm_size250"),
    ("size 500", "app_warm_size500"),
    ("size 733 (placement start)", "app_warm_size733"),
] + [(f"placement {p}", f"app_warm_at_{p}") for p in ("q1", "middle", "q3", "end")]


def row(name, keys=M4, stage="post"):
    return " | ".join(f(v(name, k, stage)) for k in keys)


def Dr(a, b, m):
    """A paired difference with its interval and its reading."""
    return f"{D(a, b, m)} ({order(a, b, m)})"


def n_pairs(a, b):
    return pair(a, b)[3]


def g(x):
    """1.2e-3, 4.5e5: one decimal, scientific, no padded exponent."""
    return f"{x:.1e}".replace("e-0", "e-").replace("e+0", "e")


def W(x):
    return f"app_warm_{x}"


def shift_table():
    """B.5's rows: Eff, Spe and the three hidden-state shift statistics of each run."""
    out = []
    for label, n in HIDDEN:
        h = run(n)["hidden_shift"]
        out.append(
            f"| {label} | {f(v(n))} | {f(v(n, 'specificity'))} | {f(h['mean_cosine'], 3)} | "
            f"{f(h['mean_rel_change'], 3)} | {f(h['frechet_rel'], 3)} |"
        )
    return "\n".join(out)


def covariance():
    """B.3.3: the default run's edit steps (after its statistics-only warm-up)."""
    geo = [r for r in trajectory("app_default") if r["kind"] == "edit"]
    cond = [lmean(r, "cond/") for r in geo]
    return dict(
        cond=cond,
        lmax=[lmean(r, "lmax/") for r in geo],
        cond_falls=sum(b < a for a, b in zip(cond, cond[1:])),
    )


def theory_cond(model):
    """Per seed: step of the peak of cond(Sigma_g) (layer mean), last / peak, last / first."""
    t = J(f"theory/{model}/theory.json")
    c = [r["stableedit"]["cond"] for r in t["runs"]]
    peaks = sorted({1 + x.index(max(x)) for x in c})
    return dict(
        sizes=t["sizes"],
        peak="–".join(str(p) for p in (peaks[0], peaks[-1]) if p)
        if len(peaks) > 1
        else str(peaks[0]),
        after=ti([x[-1] / max(x) for x in c]),
        window=ti([x[-1] / x[0] for x in c]),
        after_hi=t_interval([x[-1] / max(x) for x in c])[2],
    )


def shift_rows(method):
    """B.6.4: each segment's metrics at the switch and at the end."""
    r = run(f"app_shift_{method}")
    sw, end = r["checkpoints"][0], r["checkpoints"][-1]
    out = [f"| {method} | all | pre-edit | " + row(f"app_shift_{method}", stage="pre") + " |"]
    for label, ck in (
        (f"the switch ({sw['edits']} edits)", sw),
        (f"the end ({end['edits']} edits)", end),
    ):
        for seg, m in ck["segments"].items():
            out.append(f"| {method} | {seg} | {label} | " + " | ".join(f(m[k]) for k in M4) + " |")
    first = next(iter(sw["segments"]))
    a, b = sw["segments"][first], end["segments"][first]
    out.append(
        f"| {method} | {first}: end − switch | | " + " | ".join(s(b[k] - a[k]) for k in M4) + " |"
    )
    return "\n".join(out)


def segments():
    """The stream's segments as (start, end) stream indices: MedCF first, then ZsRE."""
    seg = run("app_shift_stableedit")["config"]["segments"]
    return dict(SEG=seg, MEDCF=(0, seg[0][1]), ZSRE=(seg[0][1], seg[0][1] + seg[1][1]))


def seg_stats(metric, segment, a="app_shift_stableedit", b="app_shift_ultraedit"):
    """(mean, lo, hi, pairs, word): a − b over the evaluated edits of a segment, counted as one of
    the page's comparisons."""
    ra, rb = per_request(a, metric), per_request(b, metric)
    c = [i for i in sorted(set(ra) & set(rb)) if segment[0] <= i < segment[1]]
    diffs = [ra[i] - rb[i] for i in c]
    m, low, high = t_interval(diffs)
    return m, low, high, len(c), note(("segment", *segment, metric), low, high, p_value(diffs))


def seg_pair(metric, lo, hi):
    """('+1.2 [+0.3, +2.1] (ahead)', pairs) for one metric of the segment [lo, hi)."""
    m, low, high, n, w = seg_stats(metric, (lo, hi))
    return f"{s(m)} [{s(low)}, {s(high)}] ({w})", n


def seg_cells(segment):
    """A segment's four paired cells, joined as table cells."""
    return " | ".join(seg_pair(m, *segment)[0] for m in M4)


def seg_reads(segment):
    """'ahead on Eff, Gen and retain; Spe not distinguishable here' for one segment."""
    return grouped([(SHORT[m], seg_stats(m, segment)[4]) for m in M4])


def holds_at(segment):
    """Whether StableEdit is ahead of ULTRAEDIT on Eff and Gen on a segment (the paper's claim)."""
    return all(seg_stats(m, segment)[4] == "ahead" for m in ("efficacy", "generalization"))


def cum(subset, m):
    """The seed-level mean gain of a subset on one metric with its t-interval."""
    c = J("cumulative.json")
    mean, lo, hi = t_interval([c["seeds"][sd][subset][m] for sd in seeds()])
    return f"{s(mean)} [{s(lo)}, {s(hi)}]"


def cum_word(subset, m):
    """How the seed-level gain reads (seeds the unit), counted as one of the page's comparisons."""
    gains = [J("cumulative.json")["seeds"][sd][subset][m] for sd in seeds()]
    _, lo, hi = t_interval(gains)
    w = note(("cumulative", subset, m), lo, hi, p_value(gains))
    return w.replace("ahead", "above 0").replace("behind", "below 0")


def seeds():
    return sorted(J("cumulative.json")["seeds"], key=int)


def cum_rows(subset):
    """Figure 1b's table: one row per seed and the mean over seeds."""
    out = []
    for sd in seeds():
        c = J("cumulative.json")["seeds"][sd]
        n = c["pairs"] - c["repeated"] if subset == "new" else c["pairs"]
        out.append(f"| {sd} | {n} | " + " | ".join(s(c[subset][m], 2) for m in M4) + " |")
    out.append(
        f"| mean over the {len(seeds())} seeds [{P95} t] | | "
        + " | ".join(cum(subset, m) for m in M4)
        + " |"
    )
    return "\n".join(out)


def every_seed(subset):
    c = J("cumulative.json")["seeds"]
    gains = [c[sd][subset][m] for sd in seeds() for m in ("efficacy", "generalization")]
    return "every seed positive on both" if min(gains) > 0 else "not every seed positive"


def none_of(words):
    """Whether none of the readings is an ordering."""
    return all(w == "not distinguishable here" for w in words)


def factor_words():
    """B.6.5: how dropping the ‖k̂‖² factor reads on each metric."""
    return [order("app_no_key_scale", "app_default", m) for m in M4]


def size_improves():
    """Whether each warm-up size is ahead of the next smaller one on Eff (Figure 10's 'consistently
    improves')."""
    sizes = [W(f"size{n}") for n in (0, 250, 500, 733)]
    return all(order(b, a) == "ahead" for a, b in zip(sizes, sizes[1:]))


def fig10_rows():
    """Figure 10's table: each run's metrics and its Eff / Gen / Spe against no warm-up."""
    out = []
    for label, name in FIG10:
        gap = (
            "(the baseline)"
            if name == "app_warm_size0"
            else " / ".join(Dw(name, "app_warm_size0", m) for m in M4)
        )
        out.append(f"| {label} | {row(name)} | {gap} |")
    return "\n".join(out)


def context():
    cum_json = J("cumulative.json")
    return dict(
        **covariance(),
        **segments(),
        M4=M4,
        P95=P95,
        TC={m: theory_cond(m) for m in ("smollm2-135m", "gemma3-270m")},
        CUM=cum_json,
        SEEDS=seeds(),
        REPEATED=sum(cum_json["seeds"][sd]["repeated"] for sd in seeds()),
        PAIRS=sum(cum_json["seeds"][sd]["pairs"] for sd in seeds()),
        row=row,
        Dr=Dr,
        n_pairs=n_pairs,
        g=g,
        W=W,
        shift_table=shift_table,
        shift_rows=shift_rows,
        seg_pair=seg_pair,
        seg_cells=seg_cells,
        seg_reads=seg_reads,
        holds_at=holds_at,
        cum_word=cum_word,
        none_of=none_of,
        factor_words=factor_words,
        size_improves=size_improves,
        cum=cum,
        cum_rows=cum_rows,
        every_seed=every_seed,
        fig10_rows=fig10_rows,
    )
