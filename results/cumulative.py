"""Figure 1b on a benchmark: do the first K edits of a stream help the later ones?

Pairs each seed's full run (app_cum_full_s<seed>) with its skipped run (app_cum_skip_s<seed>, the
same stream without its first K edits) on the later edits both evaluated -- matched by stream
index and prompt from results.json's per_request -- and stores, per seed and metric, the mean
paired gain full - skipped. The seed is the unit: each seed's gain is one value (the results page
puts a 95 % t-interval over the seeds). ZsRE repeats facts: a later edit whose (subject, target)
was already edited among the first K is a repeat, helped by its earlier copy rather than by the
stream; the gains are stored over all later edits, over the new facts only and over the repeats.
The stream order is rebuilt as run_stream builds it (data.load, then lab.stream's seeded shuffle).

    STABLEEDIT_DATA=/path/to/data python results/cumulative.py [results/runs]  # cumulative.json
"""

import json
import random
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from data import load  # noqa: E402

METRICS = ("efficacy", "generalization", "specificity", "retain")


def mean(xs):
    return sum(xs) / len(xs) if xs else None


def stream(cfg):
    """The run's requests in stream order (one zsre segment, shuffled with the run's seed)."""
    ((name, n),) = cfg["segments"]
    part = load(name, n, seed=cfg["seed"], data_dir=cfg["data_dir"])
    if cfg["shuffle"]:
        random.Random(f"{cfg['seed']}:{name}").shuffle(part)
    return part


def seed_gains(full, skip):
    """One seed: pairs, repeats, the mean gain per metric over all / new / repeated later edits."""
    K = skip["config"]["skip"]
    requests = stream(full["config"])
    earlier = {(r.subject, r.target) for r in requests[:K]}
    f, s = full["per_request"], skip["per_request"]
    at = {(i, p): j for j, (i, p) in enumerate(zip(f["index"], f["prompt"]))}
    pairs = [
        (at[(i, p)], j, i) for j, (i, p) in enumerate(zip(s["index"], s["prompt"])) if (i, p) in at
    ]
    assert all(requests[i].prompt == s["prompt"][j] for _, j, i in pairs), "stream order differs"
    repeat = {i for _, _, i in pairs if (requests[i].subject, requests[i].target) in earlier}
    out = {"skip": K, "pairs": len(pairs), "repeated": len(repeat)}
    for subset, keep in (
        ("all", lambda i: True),
        ("new", lambda i: i not in repeat),
        ("repeated_facts", lambda i: i in repeat),
    ):
        out[subset] = {
            m: mean(
                [
                    f[m][a] - s[m][b]
                    for a, b, i in pairs
                    if keep(i) and f[m][a] is not None and s[m][b] is not None
                ]
            )
            for m in METRICS
        }
    return out


def main(runs):
    seeds = sorted(
        int(p.name.rsplit("_s", 1)[1])
        for p in runs.glob("app_cum_full_s*")
        if (p / "results.json").exists()
    )
    read = lambda k, seed: json.loads((runs / f"app_cum_{k}_s{seed}" / "results.json").read_text())
    out = {
        "seeds": {str(seed): seed_gains(read("full", seed), read("skip", seed)) for seed in seeds}
    }
    records = stream({**read("full", seeds[0])["config"], "shuffle": False})
    count = Counter((r.subject, r.target) for r in records)
    out["records"] = len(records)
    out["records_sharing_a_fact"] = sum(c for c in count.values() if c > 1)
    path = Path(__file__).parent / "cumulative.json"
    path.write_text(json.dumps(out, indent=1) + "\n", "utf-8")
    for seed, g in out["seeds"].items():
        print(
            f"seed {seed}: {g['pairs']} pairs ({g['repeated']} repeats); efficacy gain "
            f"{g['all']['efficacy']:+.2f} all, {g['new']['efficacy']:+.2f} new facts"
        )
    print(f"wrote {path}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "runs"))
