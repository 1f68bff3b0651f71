"""The pre-stated tests of the lr horizon rules (lab.presets.preset_lr: the calibrated lr up to
lr_edits edits, lr · lr_edits / n beyond), read from the stored runs on streams that did not choose
them: SmolLM2's 1/n rule on the synthetic seed-1 10,000-edit stream (results/stream_10k.md) and
Gemma-3-270M's on synthetic 1,500-edit streams (results/gemma.md).

The test, the same for both: the rule's lr is too small if a larger lr is ahead on Eff and behind on
neither Spe nor retain; too large if the smaller lr is not behind on Eff and ahead on Spe or retain.
Each ordering is a paired 95 % interval over the evaluated requests. The test reads every metric of
every lr against the rule: its own family of comparisons, over which the verdict is also read after
Holm's correction (an ordering counts only if it survives it).
"""

from lab.intervals import holm, reading
from pagekit import D, have, paired_stats, run

METRICS = ("efficacy", "generalization", "specificity", "retain")
LOC = ("specificity", "retain")
# (rule run, larger lr runs, the smaller lr run, whether the test was written before the runs):
# the streams the rules were tested on. SmolLM2's seed-1 runs were stored (c4ecdca) after the test was
# written (95f040b); Gemma's seed-1 runs (b9bca31, acd4344) before it.
SMOL_SEED1 = (
    "stream_10k_s1",
    ("stream_10k_s1_lr5e-5", "stream_10k_s1_lr1e-4"),
    "stream_10k_s1_lr2.5e-5",
    True,
)
GEMMA_SEED1 = (
    "gemma_rule_1500_s1",
    ("gemma_rule_1500_s1_lr6.67e-6",),
    "gemma_rule_1500_s1_lr1.67e-6",
    False,
)
GEMMA_RETEST = (  # the Gemma test on a fresh seed, run after it was written
    "gemma_rule_1500_s2",
    ("gemma_rule_1500_s2_lr6.67e-6",),
    "gemma_rule_1500_s2_lr1.67e-6",
    True,
)


def stored(test):
    rule, larger, smaller, _ = test
    return all(have(n) for n in (rule, *larger, smaller))


def readings(test, corrected=False):
    """{(other, metric): 'ahead' | 'behind' | 'not distinguishable here'}: each lr − the rule; with
    corrected, an ordering whose Holm-adjusted p over the test's comparisons is ≥ 0.05 reads as not
    distinguishable."""
    rule, larger, smaller, _ = test
    keys = [(o, m) for o in (*larger, smaller) for m in METRICS]
    got = {k: paired_stats(k[0], rule, k[1]) for k in keys}
    adjusted = dict(zip(keys, holm([got[k][4] for k in keys])))
    out = {}
    for k in keys:
        word = reading(got[k][1], got[k][2])
        out[k] = "not distinguishable here" if corrected and adjusted[k] >= 0.05 else word
    return out


def verdict(test, corrected=False):
    """('too small', [deciding larger lr runs]) | ('too large', [the smaller lr run]) | ('holds', [])."""
    rule, larger, smaller, _ = test
    return decide(readings(test, corrected), larger, smaller)


def decide(r, larger, smaller):
    """The test on readings r {(other lr run, metric): 'ahead' | 'behind' | 'not distinguishable
    here'}, each other lr − the rule."""
    small = [
        o for o in larger if r[o, "efficacy"] == "ahead" and all(r[o, m] != "behind" for m in LOC)
    ]
    if small:
        return "too small", small
    if r[smaller, "efficacy"] != "behind" and any(r[smaller, m] == "ahead" for m in LOC):
        return "too large", [smaller]
    return "holds", []


def n_comparisons(test):
    rule, larger, smaller, _ = test
    return len(METRICS) * (len(larger) + 1)


def lr(name):
    """A run's lr as the commands write it (3.75e-5)."""
    m, e = f"{run(name)['config']['lr']:.2e}".split("e")
    return f"{m.rstrip('0').rstrip('.')}e{int(e)}"


def deciding(test):
    """The orderings that decide a failed test: '`2.5e-5` − rule: retain +6.0 [+0.5, +11.5]'."""
    kind, runs = verdict(test)
    rule = test[0]
    wanted = ("efficacy",) if kind == "too small" else LOC
    r = readings(test)
    parts = [
        f"`{lr(o)}` − rule: {m} {D(o, rule, m)}"
        for o in runs
        for m in wanted
        if r[o, m] == ("ahead" if kind == "too large" or m == "efficacy" else "behind")
    ]
    return "; ".join(parts)


def stated(test):
    """'pre-stated test' or 'test (written after its runs were stored)'."""
    return "pre-stated test" if test[3] else "test (written after its runs were stored)"


def summary(test):
    """One sentence: the test's verdict from the single intervals and after Holm's correction over
    its own comparisons."""
    if not stored(test):
        return "its test runs are not stored yet"
    kind, _ = verdict(test)
    holm_kind, _ = verdict(test, corrected=True)
    n = n_comparisons(test)
    if kind == "holds":
        return f"its {stated(test)} holds (no failure either way over its {n} comparisons)"
    after = (
        "and the failure stands after Holm's correction over the test's "
        if holm_kind == kind
        else "but that ordering does not survive Holm's correction over the test's "
    )
    return (
        f"its {stated(test)} **failed**: the rule's lr is {kind} ({deciding(test)}), "
        f"{after}{n} comparisons"
    )


def retest():
    """The Gemma criterion on a fresh seed, run after the criterion was written."""
    if GEMMA_RETEST is None or not stored(GEMMA_RETEST):
        return "its re-test on a fresh seed, run after the criterion was written, is not stored yet"
    seed = run(GEMMA_RETEST[0])["config"]["seed"]
    return f"re-tested on seed {seed}, run after the criterion was written: " + summary(
        GEMMA_RETEST
    )


def caveat(test=SMOL_SEED1):
    """A clause for wherever a rule is presented: how its pre-stated test on a stream that did not
    choose it came out."""
    if not stored(test):
        return "its test on a stream that did not choose it is not stored yet"
    kind, _ = verdict(test)
    if kind == "holds":
        return f"its {stated(test)} on a stream that did not choose it holds"
    holm_kind, _ = verdict(test, corrected=True)
    after = "also" if holm_kind == kind else "but not"
    return (
        f"its {stated(test)} on a stream that did not choose it failed (the rule's lr {kind} there, "
        f"read from the single intervals; {after} after Holm's correction over the test's "
        f"{n_comparisons(test)} comparisons)"
    )
