"""Intervals for the evaluation's numbers: Student-t intervals over seeds, paired ones over requests.

Two units of replication appear in the results. Where seeds are the unit (theory_checks.py: 3–5
seeded streams), a mean's 95 % interval is mean ± t_{0.975, n−1}·SE: with 3 seeds t is 4.30, and the
± 2 SE of a normal approximation would cover only ≈ 82 %. Where requests are the unit (two runs
evaluated on the same seeded sample), an ordering is read from the paired per-request differences,
d_i = a_i − b_i, with the same t-interval over the requests; a difference whose interval contains 0
is "not distinguishable here". No scipy: the t quantile is found by bisection on its CDF, and a
difference's p-value (for Holm's correction over the comparisons of one page) from the same CDF.
"""

import math
from functools import lru_cache

import numpy as np


def t_cdf(x, df, m=4000):
    """P(T <= x) for Student's t with df degrees of freedom: Simpson's rule on the density over
    [0, |x|] (m intervals), mirrored for x < 0."""
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    h = abs(x) / m
    y = c * (1 + (np.arange(m + 1) * h) ** 2 / df) ** (-(df + 1) / 2)
    half = h / 3 * (y[0] + y[-1] + 4 * y[1:-1:2].sum() + 2 * y[2:-1:2].sum())
    return float(0.5 + half if x >= 0 else 0.5 - half)


@lru_cache(maxsize=None)
def t_quantile(p, df):
    """The p-quantile (p > 0.5) of Student's t with df degrees of freedom, to ~1e-6."""
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:  # df = 1 needs ~12.7, large df ~1.96
        hi *= 2
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


def t_p(mean, se, df):
    """The two-sided p-value of a t-test that the mean is 0: 2 P(T > |mean / se|) with df degrees
    of freedom (1 when mean and se are both 0: every difference is 0; 0 when only se is)."""
    if se == 0:
        return 1.0 if mean == 0 else 0.0
    return max(0.0, 2 * (1 - t_cdf(abs(mean / se), df)))


def p_value(xs):
    """The two-sided p of the one-sample t-test that the mean of xs (paired differences, or one
    value per seed) is 0, the test whose 95 % interval is t_interval(xs)."""
    x = np.asarray(xs, dtype=np.float64)
    return t_p(float(x.mean()), float(x.std(ddof=1)) / math.sqrt(len(x)), len(x) - 1)


def holm(ps):
    """Holm's step-down adjustment of a family's p-values, in their order: the k-th smallest p is
    multiplied by (m − k + 1), made non-decreasing and capped at 1. An adjusted p below 0.05 keeps
    its ordering at a family-wise error rate of 5 % over the m comparisons."""
    m, out, top = len(ps), [0.0] * len(ps), 0.0
    for k, i in enumerate(sorted(range(m), key=lambda i: ps[i])):
        top = max(top, min(1.0, (m - k) * ps[i]))
        out[i] = top
    return out


def t_interval(xs, level=0.95):
    """(mean, lo, hi): the Student-t interval of the mean of xs (one value per seed or request)."""
    x = np.asarray(xs, dtype=np.float64)
    n = len(x)
    if n < 2:
        return float(x.mean()), float("nan"), float("nan")
    half = t_quantile(0.5 + level / 2, n - 1) * x.std(ddof=1) / math.sqrt(n)
    return float(x.mean()), float(x.mean() - half), float(x.mean() + half)


def paired(a, b, level=0.95):
    """(mean, lo, hi) of a − b over matched units (the same requests or the same seeds)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, "paired values must be matched one to one"
    return t_interval(a - b, level)


def matched(a, b, key):
    """(a's values, b's values) of one metric over the requests both `per_request` blocks scored,
    matched by stream index; a request a metric does not apply to (None) is left out."""
    at, bt = dict(zip(a["index"], a[key])), dict(zip(b["index"], b[key]))
    common = sorted(i for i in set(at) & set(bt) if at[i] is not None and bt[i] is not None)
    return [at[i] for i in common], [bt[i] for i in common]


def reading(lo, hi):
    """How an interval of a difference reads: an ordering only when it excludes 0."""
    if lo > 0:
        return "ahead"
    if hi < 0:
        return "behind"
    return "not distinguishable here"


if __name__ == "__main__":
    print(
        f"t_0.975 with 2 df = {t_quantile(0.975, 2):.3f} (tables: 4.303); with 1000 df "
        f"{t_quantile(0.975, 1000):.3f} (normal: 1.960)"
    )
    m, lo, hi = t_interval([6.63, 1.88, 6.63])
    print(
        f"seed-level gains 6.63 / 1.88 / 6.63: mean {m:.2f}, 95 % t-interval [{lo:.1f}, {hi:.1f}]"
        f" -> {reading(lo, hi)}"
    )
