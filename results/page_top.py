"""The names of the front page (README.md, from templates/top/README.md): the ablation table of the
Results section and the largest per-step update of the stored runs."""

from page_whole import W as whole
from page_whole import accept_short, plan_gb, resume_same, worst_plan_error
from page_whole import ratio as whole_ratio
from pagekit import D, J, f, order, v
from update_bound import stored

M = ("efficacy", "generalization", "specificity", "retain")
# (row, the run holding its per-request values: the same configuration, see results/ablation.md)
ROWS = [
    (
        "**ours (default)**: full whitening + a statistics-only warm-up of 2,000 synthetic edits",
        "app_default",
    ),
    ("without warm-up (`--warmup 0`)", "app_warm_size0"),
    (
        "full whitening + Algorithm 1's warm-up, 733 calibration records applied "
        "(`--warmup-mode paper --warmup 733`)",
        "app_warm_size733",
    ),
    ("diagonal normalization + our warm-up (`--method ultraedit`)", "zsre_no_whitening"),
    (
        "this code's diagonal variant of ULTRAEDIT (`--method ultraedit --warmup 0`)",
        "app_ultraedit",
    ),
    (
        "replica of the official ULTRAEDIT (`--replicate ultraedit-official --lr 3e-4`)",
        "replicate_ultraedit_zsre",
    ),
    (
        "replica of the official StableEdit (`--replicate stableedit-official --lr 3e-4 "
        "--warmup 733`)",
        "replicate_stableedit_zsre",
    ),
    (
        "the same replica at lr `1e-3`, where its code scored higher on the calibration split "
        "(`--lr 1e-3`)",
        "replicate_stableedit_zsre_lr1e-3",
    ),
    ("no LN (`--method no_ln --warmup 0`)", "app_no_ln"),
    ("plain fine-tuning of the same 8 matrices (`--method ft --lr 10`)", "app_ft"),
]


def table():
    """The Results table: each row's four metrics and its Eff against ours, paired."""
    out = [
        "| variant (flags) | Eff | Gen | Spe | retain | Eff − ours, paired 95 % |",
        "|---|---|---|---|---|---|",
        "| pre-edit | " + " | ".join(f(v("app_default", m, "pre")) for m in M) + " | |",
    ]
    for label, r in ROWS:
        diff = "" if r == "app_default" else f"{D(r, 'app_default')} ({order(r, 'app_default')})"
        out.append(f"| {label} | " + " | ".join(f(v(r, m)) for m in M) + f" | {diff} |")
    return "\n".join(out)


def width_ratio(key):
    """StableEdit's seconds per edit over ULTRAEDIT's on the whole SmolLM2-135M (width.json's
    validation: 'measured_s_per_edit' or 'projected_s_per_edit')."""
    x = J("width.json")["validation"][key]
    return x["stableedit"] / x["ultraedit"]


def context():
    return dict(
        LARGEST=stored()[-1][0][0],
        table=table,
        width_ratio=width_ratio,
        whole=whole,
        whole_ratio=whole_ratio,
        accept_short=accept_short,
        resume_same=resume_same,
        plan_gb=plan_gb,
        worst_plan_error=worst_plan_error,
    )
