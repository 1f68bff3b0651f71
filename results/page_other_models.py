"""The names of results/other_models.md: Gemma-3-270M edited with the step-size rule against its
preset lr, on the calibration split."""

import re

from pagekit import D, f, order, run, trajectory, v

P95 = "95 %"
PRESET, STEP = "gemma_calib300_preset", "gemma_calib300_step0.13"


def first_step(name):
    """Mean ‖Δ‖_F / ‖W‖_F over the edited layers at a run's first edit step (trajectory.csv's norm/
    columns over results.json's weight_drift weight_fro)."""
    row = next(r for r in trajectory(name) if r["kind"] == "edit")
    w = run(name)["weight_drift"]
    xs = [
        row["norm/L" + re.search(r"layers\.(\d+)\.", n).group(1)] / x["weight_fro"]
        for n, x in w.items()
    ]
    return sum(xs) / len(xs)


def lr(x):
    m, e = f"{x:.2e}".split("e")
    return f"{m.rstrip('0').rstrip('.')}e{int(e)}"


def Dr(m):
    return f"{D(STEP, PRESET, m)} ({order(STEP, PRESET, m)})"


def row(name):
    return " | ".join(
        f(v(name, k)) for k in ("efficacy", "generalization", "specificity", "retain")
    )


def context():
    return dict(P95=P95, PRESET=PRESET, STEP=STEP, first_step=first_step, lr=lr, Dr=Dr, row=row)
