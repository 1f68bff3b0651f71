"""The names of results/speed.md: the figures of results/bench.json and how each reads against its
target."""

from pagekit import J, f


def each(xs):
    return ", ".join(f(x) for x in xs)


def span(xs):
    return f"{f(min(xs))}–{f(max(xs))}"


def against(x, target):
    """How a measured ratio reads against its target (an upper bound)."""
    side = "under" if x < target else "over"
    return f"{side} the target by {f(100 * abs(x - target) / target, 1)} %"


def verdict(xs, target, near=0.05):
    """'at the target ...' when every x is within `near` of it, else over or under it."""
    if all(abs(x - target) < near * target for x in xs):
        return "at the target, not under it with a margin"
    return "under the target" if all(x < target for x in xs) else "over the target"


def context():
    b = J("bench.json")
    mem, stream = b["memory"], b["stream"]
    return dict(
        B=b,
        S=b["speed"],
        W=b["backward"],
        M=mem,
        T=stream,
        C=b["scale"],
        rss={int(k): x for k, x in mem["peak_rss_mb"].items()},
        big=stream["n1000_seconds_to_first_step_runs"],
        small=stream["small_n1000_seconds_to_first_step_runs"],
        phase=b["backward"]["seconds_per_step"],
        post=b["scale"]["post"],
        flat=mem["ratio_3000_over_300"] <= 1.05,  # the design's bound for a 10x longer stream
        each=each,
        span=span,
        against=against,
        verdict=verdict,
    )
