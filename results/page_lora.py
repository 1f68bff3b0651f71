"""The names of results/lora.md: what each LoRA rank keeps of the edit (results/lora.json), with
paired t-intervals from the stored mean and standard error of each difference."""

from lab.intervals import t_p, t_quantile
from pagekit import J, f, note, run, s

METRICS = ("efficacy", "generalization", "specificity", "retain")
DATA = {"zsre": "ZsRE", "medcf": "MedCF"}
LEVEL = 0.95  # the intervals' coverage


def evaluated(dataset, edits):
    """The number of requests the run scored (the unit of the paired intervals)."""
    return len(run(f"lora_{dataset}_{edits}")["per_request"]["index"])


def ci(r, k):
    """(mean, lo, hi): adapter − exact edit, paired t-interval from the stored mean and SE."""
    m, se = r[f"diff_{k}"]
    h = t_quantile(0.5 + LEVEL / 2, evaluated(r["dataset"], r["edits"]) - 1) * se
    return m, m - h, m + h


def cell(r, k):
    m, lo, hi = ci(r, k)
    return f"{s(m, 2)} [{s(lo, 2)}, {s(hi, 2)}]"


def judged(r, k):
    """How adapter − exact edit reads on metric k (counted as one of the page's comparisons; the
    p-value from the stored mean and SE, with the evaluated requests − 1 degrees of freedom)."""
    m, lo, hi = ci(r, k)
    se = r[f"diff_{k}"][1]
    p = t_p(m, se, evaluated(r["dataset"], r["edits"]) - 1)
    return note(("lora", r["dataset"], r["rank"], k), lo, hi, p)


def worded(r, k):
    """A table cell: the interval and, where it excludes 0, its reading."""
    w = judged(r, k)
    return cell(r, k) + ("" if w == "not distinguishable here" else f" {w}")


def row(dataset, rank):
    return next(r for r in J("lora.json")["rows"] if r["dataset"] == dataset and r["rank"] == rank)


def table():
    """Every rank's sizes, share kept and the four paired differences."""
    lines = [
        "| data | rank | adapter MB (patch MB) | share kept (mean, min) | "
        + " | ".join(f"Δ {k[:4]}" for k in METRICS)
        + " |",
        "|---|---|---|---|" + "---|" * len(METRICS),
    ]
    for r in J("lora.json")["rows"]:
        lines.append(
            f"| {r['dataset']} ({r['edits']}) | {r['rank']} | {f(r['adapter_mb'])} "
            f"({f(r['patch_mb'])}) | {f(r['kept_mean'], 4)}, {f(r['kept_min'], 4)} | "
            + " | ".join(worded(r, k) for k in METRICS)
            + " |"
        )
    return "\n".join(lines)


def cut(dataset):
    return [r for r in J("lora.json")["rows"] if r["dataset"] == dataset and r["rank"] != "full"]


def all_read(k, want):
    """Whether every cut rank on both datasets reads `want` against the exact edit on metric k."""
    return all(judged(r, k) == want for d in DATA for r in cut(d))


def readings(dataset, k):
    """'rank 8: ahead, +1.63 [+0.44, +2.82]; ...' for one dataset and metric."""
    return "; ".join(f"rank {r['rank']} {judged(r, k)} ({cell(r, k)})" for r in cut(dataset))


def share(key):
    return f"{f(100 * float(key), 0)} %"


def need_lines():
    """One line per share: the rank that keeps it after each stream length."""
    need = J("lora.json")["rank_for_share"]
    return "\n".join(
        f"rank keeping {share(key)} of ‖W_t − W_0‖_F (mean over layers): "
        + ", ".join(f"{n} edits: {f(x, 0)}" for n, x in need[key].items())
        for key in need
    )


def context():
    return dict(
        LEVEL=LEVEL,
        full_exact=all(row(d, "full")[f"diff_{k}"] == [0, 0] for d in DATA for k in METRICS),
        patch_mb=row("zsre", "full")["patch_mb"],
        full_mb=row("zsre", "full")["adapter_mb"],
        need=J("lora.json")["rank_for_share"],
        evaluated=evaluated,
        cell=cell,
        row=row,
        table=table,
        all_read=all_read,
        readings=readings,
        share=share,
        need_lines=need_lines,
    )
