"""Which data chose each setting: one table that every result page renders its statement from, so
that no two pages can say different things about the same choice.

Each entry names the setting, the data that chose it, and how; `statement(*keys)` renders the
entries a page relies on as a list, and ends with the settings the evaluation split took part in.
The horizon rules' entries carry the verdict of their pre-stated tests (results/rules.py).
"""

import rules

CALIB = "the calibration split (the first 300 usable records of `zsre_calib.json`)"
EVAL = "the evaluation split (`zsre_eval.json`, 1,487 usable edits)"
# key: (setting, the data that chose it, how); a callable is called when the statement is rendered
CHOICES = {
    "smol_preset": (
        "SmolLM2-135M's lr `2.5e-4`, α 10, layers 18–25, per-layer statistics, warm-up size 2,000",
        CALIB,
        "the sweep of [calibration.md](calibration.md), 100 edits per step, all 300 evaluated",
    ),
    "warmup": (
        "the default warm-up's source and mode (synthetic, statistics only; SmolLM2 and Gemma-3-270M)",
        EVAL,
        "adopted over Algorithm 1's in-domain applied warm-up after the ablation's rows on that split "
        "had been seen ([ablation.md](ablation.md)); the calibration sweep measured only the warm-up's "
        "size",
    ),
    "lr_edits": (
        "SmolLM2's `lr_edits = 1500` (the stream length up to which the calibrated lr is kept)",
        EVAL,
        "set just above the split's 1,487 edits with its length and runs in view, so that the split "
        "runs at the calibrated lr",
    ),
    "rule": (
        "the 1/n rule beyond `lr_edits` (`2.5e-4` · 1500 / n; `3.75e-5` at 10,000 edits)",
        "the synthetic 10,000-edit stream of seed 0",
        lambda: (
            "after its runs at `2.5e-4`, `1e-4` and `5e-5`, the stream it is reported on; on the "
            f"seed-1 stream, which did not choose it, {rules.summary(rules.SMOL_SEED1)} "
            "([stream_10k.md](stream_10k.md))"
        ),
    ),
    "gemma_preset": (
        "Gemma-3-270M's lr `1e-5` and layers 6–11",
        CALIB,
        "the Gemma sweep of [calibration.md](calibration.md); re-checked on all 733 calibration "
        "records ([gemma.md](gemma.md))",
    ),
    "gemma_horizon": (
        "Gemma-3-270M's `lr_edits = 500` (lr · 500 / n beyond 500 edits)",
        "the synthetic 3,000-edit stream of seed 0 (`results/runs/gemma_3k*`)",
        lambda: (
            "after its runs at `1e-5` and `5e-6`, the stream it is reported on. On the seed-1 "
            "1,500-edit stream (runs stored in commits `b9bca31` and `acd4344`, the test written in "
            f"`95f040b`), {rules.summary(rules.GEMMA_SEED1)}; {rules.retest()} ([gemma.md](gemma.md))"
        ),
    ),
    "ft_lr": ("FT's lr 10", CALIB, "from lr 1, 10, 100 and 1000"),
    "official_lr": (
        "the official codes' lr (`3e-4` and `1e-3`)",
        CALIB,
        "the two lrs the official codes were run at there, the peers' choice, not a search; each "
        "comparison with a replica beyond that split is read against the better of its two lrs on "
        "the comparison's own data (the higher mean of the stored Eff, Gen and Spe), a choice made "
        "on the data compared, which can only favour the replica",
    ),
    "medcf": (
        "every setting of the MedCF runs",
        "ZsRE (the entries above)",
        "none on MedCF, as the paper edits MedCF without dataset-specific tuning",
    ),
    "step_size": (
        "`--step-size 0.13` (a model without a preset)",
        CALIB,
        "SmolLM2's calibrated first step ([other_models.md](other_models.md)); nothing about "
        "Gemma-3-270M chose it",
    ),
    "paper_presets": (
        "the 7–8B presets' lr, α, edits per step, layers and warm-up size",
        "the paper (its authors chose them)",
        "no data here",
    ),
}


def line(key):
    """'* **Setting:** data; how.'"""
    setting, data, how = CHOICES[key]
    how = how() if callable(how) else how
    return f"* **{setting[0].upper() + setting[1:]}:** {data}; {how}."


def statement(*keys, base=""):
    """The page's list of the settings it relies on and the data that chose each, ending with those
    the evaluation split chose; base prefixes the links to other pages (the front page: 'results/')."""
    on_eval = [CHOICES[k][0] for k in keys if CHOICES[k][1] == EVAL]
    last = (
        "Chosen with the evaluation split in view: " + "; ".join(on_eval) + "."
        if on_eval
        else "The evaluation split chose none of them."
    )
    text = "\n".join(line(k) for k in keys) + "\n\n" + last + "\n"
    return text.replace("](", "](" + base)
