"""A stored theory.json read back for `theory_checks.py --rejudge` and `--complete`: the series its
checks judge, each run checked before any work, so that a missing file, a truncated JSON or a run
without its probe is one line (DataError), not a traceback after minutes of judging.

    res = read_theory("results/theory/smollm2/theory.json")   # the dict theory_checks.py wrote
"""

import json
from pathlib import Path

from capture import DataError

# the per-seed series the checks read, and the per-arm ones (lab/theory_runs.seed_run writes them);
# an arm added later (theory_checks.py --complete) is checked the same way when a run has it
SERIES = ("bias_sq", "control_bias2", "b_stat", "drift", "full", "mid", "stats")
ARMS = {"stableedit": ("norm", "cond", "surrogate"), "ultraedit": ("norm",), "no_ln": ("norm",)}
ADDED_ARMS = {"ultraedit_matched": ("norm",)}


def read_theory(path):
    """A stored theory.json, checked before any work: a readable file holding a JSON object with its
    seeds, seconds and per-seed runs, each run with every series the checks read; else DataError."""
    p = Path(path)
    try:
        res = json.loads(p.read_text("utf-8"))
    except IsADirectoryError:
        raise DataError(f"--rejudge {path}: is a folder; name its theory.json") from None
    except OSError as e:
        raise DataError(f"--rejudge {path}: cannot be read ({e.strerror})") from None
    except (ValueError, RecursionError) as e:  # not JSON (truncated), or not UTF-8 text
        raise DataError(f"--rejudge {path}: not a JSON file ({str(e)[:80]})") from None
    if not isinstance(res, dict):
        raise DataError(
            f"--rejudge {path}: holds a JSON {type(res).__name__}, not a theory.json object"
        )
    runs = res.get("runs")
    seeds, seconds = res.get("seeds"), res.get("seconds")
    if not isinstance(seeds, list) or not seeds or not isinstance(seconds, (int, float)):
        raise DataError(f"--rejudge {path}: no 'seeds' list and 'seconds': not a theory.json")
    if not isinstance(runs, list) or not runs:
        raise DataError(f"--rejudge {path}: no per-seed 'runs' to judge: not a theory.json")
    for i, r in enumerate(runs):
        why = _bad_run(r)
        if why:
            raise DataError(f"--rejudge {path}: run {i} {why}; it cannot be judged")
    return res


def _bad_run(r):
    """What is missing from one stored run, or None."""
    numbers = lambda xs, null=False: (
        isinstance(xs, list)
        and len(xs) > 0
        and all(isinstance(x, (int, float)) or (null and x is None) for x in xs)
    )
    if not isinstance(r, dict):
        return "is not an object"
    probe = r.get("probe")
    if not isinstance(probe, list) or not all(
        isinstance(q, dict)
        and isinstance(q.get("step"), (int, float))
        and isinstance(q.get("bias2"), dict)
        and (q["step"] <= 0 or isinstance(q["bias2"].get("cold"), (int, float)))
        for q in probe
    ):
        return "has no 'probe' series (per checkpoint: step, bias2 with the cold tracker's)"
    for k in [*SERIES, *(["bias_sq_frozen"] if "bias_sq_frozen" in r else [])]:
        if not numbers(r.get(k)):
            return f"has no series {k!r}"
    arms = {**ARMS, **{k: v for k, v in ADDED_ARMS.items() if k in r}}
    for arm, keys in arms.items():
        a = r.get(arm)
        layers = a.get("layers") if isinstance(a, dict) else None
        if not isinstance(layers, dict) or not layers:
            return f"has no arm {arm!r} with its per-layer series"
        if not all(
            isinstance(s, dict) and numbers(s.get("cos_prev"), True) for s in layers.values()
        ):
            return f"has no per-layer 'cos_prev' series in arm {arm!r}"
        for k in keys:
            if not numbers(a.get(k)):
                return f"has no series {arm}/{k}"
        if not isinstance(a.get("rel0"), (int, float)) or not a["rel0"] > 0:
            return f"has no first-step size {arm}/rel0"
    return None
