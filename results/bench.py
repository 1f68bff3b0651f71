"""Time to result and scale, measured in one run as ratios (paper Table 3's per-edit cost).

Run on an otherwise idle machine, from the repository root:

    python results/bench.py                      # the default parts, ~17 min on 2 cores
    python results/bench.py speed memory         # some of: speed, backward, memory, stream, scale
    python results/bench.py table                # the speed table from results/bench.json

speed   the default command `run_stream.py --n 500` with an empty run cache, again (cache hit),
        and with --no-cache: second/first wall clock, bit-exact weights and equal metrics of the
        cached and the uncached run, run_stream's overhead_ratio (method's own work over
        forward+backward), stableedit/ultraedit seconds per edit on the same stream, and the
        evaluator's sequences/s over a bare forward (evaluate.bench_speed)
backward  the forward+backward that stops at the lowest edited layer vs a plain backward to the
        embeddings (every weight's gradient), same 100-request batch; the per-step phases
memory  peak RSS of a 3,000-edit vs a 300-edit stream, the same evaluation size
stream  a generated 2M-line UltraEditBench JSONL (the authors' layout): seconds to the first
        edit step and peak RSS of a 1,000-edit run, against reading the whole file and against a
        2,000-line file; two more runs of each, stopped at the first step, give its spread
scale   the design card's `run_stream.py --n 20000` on SmolLM2 (~19 min): wall clock and peak RSS
        (not part of the default set)

Every figure lands in results/bench.json; results/speed.md is generated from it (results/pages.py),
and `table` prints its table. This file holds the parts and the command line; bench_run.py runs a
script in a fresh process and reads its peak RSS, bench_stream.py is the `stream` part, bench_table.py
the table.
"""

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the repository's modules, imported where a part needs them
from bench_run import results, run, seconds  # noqa: E402
from bench_stream import stream  # noqa: E402
from bench_table import table  # noqa: E402

DEFAULT = ["speed", "backward", "memory", "stream"]


def zsre_or_synthetic(n):
    """(name, n requests): the ZsRE calibration split where the data folder has it, else the synthetic stream."""
    from capture import DataError
    from data import load

    try:
        return "zsre-calib", load("zsre-calib", n)
    except DataError as e:
        print(f"bench: {e}; timing on the synthetic stream instead", file=sys.stderr)
        return "synthetic", load("synthetic", n)


def eigh_seconds():
    """Seconds of 8 float64 eigh of 576 x 576 (SmolLM2's 8 edited layers), one by one and side by side."""
    from whitening import eigen, eigens

    covs = [
        (lambda A: A @ A.T / 800)(torch.randn(576, 800, dtype=torch.float64)) for _ in range(8)
    ]  # SmolLM2's 8
    eig = {}
    for name, fn in (
        ("one_by_one", lambda: [eigen(c) for c in covs]),
        ("side_by_side", lambda: eigens(covs)),
    ):
        eig[name] = seconds(fn)
    return eig


def speed(tmp, env):
    default = ["run_stream.py", "--n", 500]
    first = run(default + ["--out", tmp / "first"], env)
    second = run(default + ["--out", tmp / "second"], env)
    run(default + ["--out", tmp / "fresh", "--no-cache"], env)
    run(default + ["--out", tmp / "ultra", "--method", "ultraedit"], env)
    r1, r2, r3, ru = (results(tmp / k) for k in ("first", "second", "fresh", "ultra"))
    w2, w3 = (
        torch.load(tmp / k / "editor_state.pt", weights_only=True)["weights"]
        for k in ("second", "fresh")
    )
    from evaluate import bench_speed
    from lab.models import load_model

    eig = eigh_seconds()
    model, tok, _ = load_model("smollm2-135m")
    ev_data, ev_reqs = zsre_or_synthetic(100)
    ev = {"data": ev_data, **bench_speed(model, tok, ev_reqs)}
    return {
        "first_wall_s": first[0],
        "second_wall_s": second[0],
        "second_over_first": second[0] / first[0],
        "second_cache": r2["timing"]["cache"],
        "cached_equals_uncached": {
            "weights_bit_exact": all(torch.equal(w2[n], w3[n]) for n in w2),
            "post_equal": r2["post"] == r3["post"],
        },
        "overhead_ratio": r1["timing"]["overhead_ratio"],
        "overhead_ratio_second": r2["timing"]["overhead_ratio"],
        "seconds_per_edit": {
            "stableedit": r1["timing"]["seconds_per_edit"],
            "ultraedit": ru["timing"]["seconds_per_edit"],
        },
        "stableedit_over_ultraedit": r1["timing"]["seconds_per_edit"]
        / ru["timing"]["seconds_per_edit"],
        "evaluator_over_bare_forward": ev["evaluator"] / ev["bare_forward"],
        "evaluator": ev,
        "eigh_8x576_seconds": eig,
    }


def backward(tmp, env):
    """Per-step phases at the paper's 100 edits per step, and the forward+backward that stops at the
    lowest edited layer (frozen weights, no weight gradients) against a plain backward to the
    embeddings that builds every weight's gradient, on the same batch."""
    import torch.nn.functional as F

    from capture import answer_logits, masked, tokenize
    from data import load
    from editor import Editor
    from lab.models import load_model
    from lab.presets import preset_layers

    model, tok, preset = load_model("smollm2-135m")
    ed = Editor(model, tok, preset_layers(preset, "zsre"), lr=preset["lr"], alpha=preset["alpha"])
    warm = load("synthetic", 300)
    for i in range(0, len(warm), 100):  # LN needs statistics: a statistics-only warm-up
        ed.edit(warm[i : i + 100], apply=False)
    data, reqs = zsre_or_synthetic(500)
    reps = [ed.edit(reqs[i : i + 100]) for i in range(0, 500, 100)][1:]  # the first warms caches
    phase = {k: sum(r["seconds"][k] for r in reps) / len(reps) for k in reps[0]["seconds"]}
    own = sum(v for k, v in phase.items() if k != "forward_backward")
    batch = tokenize(tok, [r.prompt for r in reqs[:100]], [r.target for r in reqs[:100]])

    def plain_backward():
        model.requires_grad_(True)
        logits = answer_logits(model, batch)
        F.cross_entropy(logits, masked(batch["labels"], batch["labels"] != -100)).backward()
        model.zero_grad(set_to_none=True)
        model.requires_grad_(False)

    ours, plain = seconds(lambda: ed.capture(batch)), seconds(plain_backward)
    return {
        "data": data,
        "layers": len(ed.modules),
        "seconds_per_step": phase,
        "own_over_forward_backward": own / phase["forward_backward"],
        "capture_s": ours,
        "plain_backward_s": plain,
        "capture_over_plain_backward": ours / plain,
    }


def memory(tmp, env):
    rss = {}
    for n in (300, 3000):
        rss[n] = run(["run_stream.py", "--n", n, "--eval-n", 100, "--out", tmp / f"mem{n}"], env)[1]
    return {"peak_rss_mb": rss, "ratio_3000_over_300": rss[3000] / rss[300]}


def scale(tmp, env):
    wall, rss, _ = run(["run_stream.py", "--n", 20000, "--out", tmp / "n20000"], env)
    r = results(tmp / "n20000")
    return {
        "wall_s": wall,
        "peak_rss_mb": rss,
        "seconds_per_edit": r["timing"]["seconds_per_edit"],
        "overhead_ratio": r["timing"]["overhead_ratio"],
        "post": r["post"],
    }


PARTS = {"speed": speed, "backward": backward, "memory": memory, "stream": stream, "scale": scale}


def check_parts(parts):
    """Exit with status 2 and one line on stderr unless parts are known ones (table runs alone)."""
    if set(parts) - set(PARTS):
        bad = sorted(set(parts) - set(PARTS))[0]
        print(
            f"bench.py: {'table runs alone' if bad == 'table' else f'unknown part {bad!r}'}; "
            f"parts: {', '.join(PARTS)}, or table alone",
            file=sys.stderr,
        )
        sys.exit(2)


def bench_env(tmp):
    """The environment of the benched runs: an empty run cache under tmp, the converted model shared
    (linked from the user's cache, not rebuilt)."""
    run_cache = tmp / "cache"
    run_cache.mkdir()
    from lab.cache import home as cache_home

    home = cache_home()
    for m in home.iterdir() if home.exists() else []:
        if m.name != "runs":
            (run_cache / m.name).symlink_to(m)
    env = {
        k: v for k, v in os.environ.items() if k != "STABLEEDIT_RUN_CACHE"
    }  # it would override the empty one
    env["STABLEEDIT_CACHE"] = str(run_cache)
    return env


def main(argv=None):
    parts = (sys.argv[1:] if argv is None else argv) or DEFAULT
    if parts == ["table"]:
        print(table(json.loads((Path(__file__).parent / "bench.json").read_text())))
        return
    check_parts(parts)
    tmp = Path(tempfile.mkdtemp(prefix="stableedit-bench-"))
    env = bench_env(tmp)
    out = {"torch_threads": torch.get_num_threads(), "cpus": os.cpu_count()}
    try:
        for name in parts:
            print(f"bench: {name} ...", file=sys.stderr, flush=True)
            out[name] = PARTS[name](tmp, env)
    finally:  # the runs and the 432 MB stream file go
        shutil.rmtree(tmp, ignore_errors=True)
    path = Path(__file__).parent / "bench.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**old, **out}, indent=2))
    print(json.dumps(out, indent=2))
    print(table({**old, **out}))


if __name__ == "__main__":
    main()
