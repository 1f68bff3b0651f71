"""The edit stream as Algorithm 1 runs it (§4; §5's protocol; App. B.6.1, B.6.4; Figure 1b): which
requests, in which order, where the warm-up goes, which edits are skipped and which are evaluated.

    segments("zsre:1000,medcf:300", None)    # [("zsre", 1000), ("medcf", 300)]: B.6.4's non-i.i.d. stream
    requests, seg_of, warm = load_stream(cfg) # seg_of[i]: the segment request i belongs to
    steps = plan(cfg, len(warm))              # [("edit" | "warmup", lo, hi), ...]
    sample = eval_sample(cfg)                 # stream indices evaluated before and after

A stream is one or more segments, each `name:k` (k records of a dataset, in file order, or in a
seeded random order with shuffle). Two segments of one dataset take consecutive records, and a
warm-up from a dataset in the stream takes the records after the stream's. skip=K (Figure 1b's
positive cumulative effect) runs only the edits from K on; the evaluated edits are then those of
the full stream's sample that come after K, so a full and a skipped run score the same requests.
"""

import random
import re
from pathlib import Path

from capture import DataError
from data import load

PLACEMENTS = {"start": 0.0, "q1": 0.25, "middle": 0.5, "q3": 0.75, "end": 1.0}
# stats: statistics only (Table 13's Warmup-100); applied: edits too, normalized as the method does;
# paper: Algorithm 1 / the official preheat -- in-domain records, applied, diagonally normalized
WARMUP_MODES = ("stats", "applied", "paper")
IN_DOMAIN = {"zsre": "zsre-calib"}  # the evaluation split's training-side records
# name:count; a count that is not a whole number >= 1 is refused
SEGMENT = re.compile(r"^(.+):([-+]?[\d.eE]+)$")


def segments(spec, n):
    """[(dataset, k), ...] of a --dataset value: `name` (k = n, default 1000) or `a:k1,b:k2,...`
    (then n, if given, must be k1 + k2 + ...). An existing file is one dataset, commas or not."""
    if Path(spec).is_file():
        return [(spec, 1000 if n is None else n)]
    parts = [p.strip() for p in spec.split(",")]
    found = [SEGMENT.match(p) for p in parts]
    if not any(found) and len(parts) == 1:
        return [(spec, 1000 if n is None else n)]
    if not all(found):
        bad = parts[found.index(None)]
        raise DataError(
            f"--dataset {spec!r}: {bad!r} is neither a file nor name:count; a stream of segments "
            "is name:count,name:count,..."
        )
    segs = []
    for m in found:
        name, count = m.group(1), m.group(2)
        if not count.isdigit() or int(count) < 1:
            raise DataError(
                f"--dataset {spec!r}: the count of {name} must be a whole number >= 1, got {count!r}"
            )
        segs.append((name, int(count)))
    if n is not None and n != sum(k for _, k in segs):
        raise DataError(
            f"--dataset {spec!r} has {sum(k for _, k in segs)} records but --n is {n}; leave --n out"
        )
    return segs


def labels(segs):
    """Each segment's label: its dataset, numbered when a dataset recurs (zsre#1, zsre#2)."""
    names = [name for name, _ in segs]
    count = {}
    out = []
    for name in names:
        count[name] = count.get(name, 0) + 1
        out.append(f"{name}#{count[name]}" if names.count(name) > 1 else name)
    return out


def used(segs, name):
    """Records of `name` that the stream takes: a warm-up from it starts after them."""
    return sum(k for s, k in segs if s == name)


def load_stream(cfg):
    """(requests, segment label of each, warm-up requests) for a resolved run_stream configuration."""
    requests, seg_of, offset = [], [], {}
    for (name, k), label in zip(cfg["segments"], labels(cfg["segments"])):
        part = load(
            name,
            k,
            offset=offset.get(name, 0),
            seed=cfg["seed"],
            data_dir=cfg["data_dir"],
            encoding=cfg.get("encoding"),
        )
        offset[name] = offset.get(name, 0) + k
        if cfg["shuffle"]:  # a seeded order within the segment
            random.Random(f"{cfg['seed']}:{label}").shuffle(part)
        requests += part
        seg_of += [label] * k
    wu = cfg["warmup"]
    warm = (
        load(
            wu["data"],
            wu["n"],
            offset=wu["offset"],
            seed=cfg["seed"],
            data_dir=cfg["data_dir"],
            encoding=cfg.get("encoding"),
        )
        if wu["n"]
        else []
    )
    return requests, seg_of, warm


def plan(cfg, n_warm):
    """The stream as a list of (kind, lo, hi): edit steps from `skip` on, with the warm-up inserted
    at its placement among them. A step never spans two segments: the last step of a segment is
    shorter, so the switch falls between steps and a checkpoint there sees one segment only."""
    batch, skip = cfg["batch"], cfg["skip"]
    ends = [sum(k for _, k in cfg["segments"][: j + 1]) for j in range(len(cfg["segments"]))]
    edits = [
        ("edit", i, min(i + batch, hi))
        for lo, hi in zip([0] + ends[:-1], ends)
        for i in range(max(lo, skip), hi, batch)
    ]
    warm = [("warmup", i, min(i + batch, n_warm)) for i in range(0, n_warm, batch)]
    at = round(PLACEMENTS[cfg["warmup"]["placement"]] * len(edits))
    return edits[:at] + warm + edits[at:]


def warmup_step(mode):
    """The keyword arguments of Editor.edit for a warm-up step (Algorithm 1's warm-up, one place for its
    modes): stats only feeds the statistics; applied edits the weights too, normalized as the method
    does; paper edits them with per-dimension normalization, as the official preheat (which only
    lab/official.py's OfficialEditor does: diagonal is one of the official code's choices)."""
    return {
        "stats": {"apply": False},
        "applied": {"apply": True},
        "paper": {"apply": True, "diagonal": True},
    }[mode]


def eval_sample(cfg):
    """Sorted stream indices evaluated: a seeded sample of eval_n of the n edits (all with 'all'),
    less those before skip -- the same requests a full run scores after K."""
    n, m = cfg["n"], cfg["eval_n"]
    full = sorted(random.Random(cfg["seed"]).sample(range(n), n if m == "all" else min(m, n)))
    return [i for i in full if i >= cfg["skip"]]


def segment_means(per_request, seg_of):
    """{segment: {metric: mean}} from edit_metrics' per_request lists and each request's segment."""
    out = {}
    for label in dict.fromkeys(seg_of):
        rows = [j for j, s in enumerate(seg_of) if s == label]
        out[label] = {}
        for k, vals in per_request.items():
            xs = [vals[j] for j in rows if vals[j] is not None]
            if xs:
                out[label][k] = sum(xs) / len(xs)
    return out


if __name__ == "__main__":
    cfg = {
        "segments": segments("synthetic:250,synthetic:250", None),
        "seed": 0,
        "data_dir": None,
        "shuffle": False,
        "n": 500,
        "batch": 100,
        "skip": 200,
        "eval_n": 100,
        "warmup": {"n": 200, "data": "synthetic", "offset": 500, "placement": "middle"},
    }
    requests, seg_of, warm = load_stream(cfg)
    print(
        f"{len(requests)} requests in segments {dict.fromkeys(seg_of)}; distinct prompts: "
        f"{len({r.prompt for r in requests + warm})} of {len(requests) + len(warm)} (warm-up included)"
    )
    print("plan with skip=200 and the warm-up in the middle:", plan(cfg, len(warm)))
    print(
        f"evaluated: {len(eval_sample(cfg))} of the full stream's sample of 100, all >= 200: "
        f"{min(eval_sample(cfg)) >= 200}"
    )
