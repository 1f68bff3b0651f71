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
and `table` prints its table.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the repository's modules, imported where a part needs them
# run a script and report its own peak RSS (kB) on stderr when it exits, whatever its exit path. The
# peak is /proc's VmHWM of the script's own memory: ru_maxrss of a child carries the RSS its parent
# had when it forked (a child of a 2 GB process reports >= 2 GB), so once this process had loaded a
# model every run measured ~5.2 GB, the same whatever it did.
WRAP = (
    "import atexit, resource, runpy, sys\n"
    "def peak():\n"
    "    try:\n"
    "        return int(next(x.split()[1] for x in open('/proc/self/status') if x.startswith('VmHWM')))\n"
    "    except (OSError, StopIteration):\n"
    "        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "atexit.register(lambda: print('MAXRSS', peak(), file=sys.stderr))\n"
    "sys.argv = sys.argv[1:]\n"
    "sys.path.insert(0, '.')\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


def run(argv, env, wait_for=None, stop=False):
    """(wall seconds, peak RSS in MB, stderr) of `python argv` in the repository; with wait_for=(state
    file, k), also the seconds until that run has saved k finished steps, and with stop=True only
    those seconds: the run is killed there."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", WRAP, *map(str, argv)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = None
    while wait_for and first is None and proc.poll() is None:
        if Path(wait_for[0]).exists():  # written atomically: whole when it is there
            if torch.load(wait_for[0], weights_only=True)["done"] >= wait_for[1]:
                first = time.perf_counter() - t0
        time.sleep(0.05)
    if stop and first is not None:
        proc.kill()
        proc.communicate()
        return first
    out, err = proc.communicate()
    if wait_for and first is None and not proc.returncode:
        sys.exit(
            f"bench: {' '.join(map(str, argv))} ended before it saved {wait_for[1]} steps:\n{err[-3000:]}"
        )
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"bench: {' '.join(map(str, argv))} failed:\n{err[-3000:]}")
    rss = (
        int(next(line.split()[1] for line in err.splitlines() if line.startswith("MAXRSS"))) / 1024
    )
    return (wall, rss, err) if wait_for is None else (wall, rss, err, first)


def results(out):
    return json.loads((Path(out) / "results.json").read_text())


def seconds(fn, repeats=3):
    """Mean seconds of fn() over repeats calls, after one untimed call (first-call allocations)."""
    fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def zsre_or_synthetic(n):
    """(name, n requests): the ZsRE calibration split where the data folder has it, else the synthetic stream."""
    from data import load
    from lab.request import DataError

    try:
        return "zsre-calib", load("zsre-calib", n)
    except DataError as e:
        print(f"bench: {e}; timing on the synthetic stream instead", file=sys.stderr)
        return "synthetic", load("synthetic", n)


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

    from data import load, tokenize
    from editor import Editor
    from evaluate import answer_logits, masked
    from lab.models import load_model, preset_layers

    model, tok, preset = load_model("smollm2-135m")
    ed = Editor(model, tok, preset_layers(preset, "zsre"), lr=preset["lr"], alpha=preset["alpha"])
    ed.warmup(load("synthetic", 300))  # LN needs statistics: a statistics-only warm-up
    data, reqs = zsre_or_synthetic(500)
    reps = [ed.edit(reqs[i : i + 100]) for i in range(0, 500, 100)][
        1:
    ]  # the first step warms caches
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


def write_records(path, lines):
    """An UltraEditBench-layout JSONL file: one JSON object per line, as the authors ship it."""
    with open(path, "w") as f:
        for i in range(lines):
            rec = {
                "subject": f"Entity {i}",
                "prompt": f"What is the code name of entity {i}?",
                "ans": f"Code {i % 9973}",
                "rephrase_prompt": f"Entity {i} goes by the code name",
                "loc": f"Which year did event {i} happen?",
                "loc_ans": str(1900 + i % 120),
            }
            f.write(json.dumps(rec) + "\n")


def stream_args(data, out):
    return [
        "run_stream.py",
        "--dataset",
        "ultraeditbench",
        "--data-dir",
        data,
        "--n",
        1000,
        "--warmup",
        0,
        "--eval-n",
        10,
        "--no-cache",
        "--out",
        out,
    ]


def stream(tmp, env):
    root = tmp / "data" / "ultraeditbench"
    root.mkdir(parents=True)
    path = root / "UltraEditBench_2M.json"
    t0 = time.perf_counter()
    small = tmp / "small" / "ultraeditbench"
    small.mkdir(parents=True)

    write_records(path, 2_000_000)
    written = time.perf_counter() - t0
    write_records(small / path.name, 2_000)
    args = stream_args  # the same records in both folders: no cache hit
    # the state file is first written just before the first edit step starts
    wall, rss, _, start = run(
        args(tmp / "data", tmp / "big"), env, wait_for=(tmp / "big" / "editor_state.pt", 0)
    )
    s_wall, s_rss, _, s_start = run(
        args(tmp / "small", tmp / "smallrun"),
        env,
        wait_for=(tmp / "smallrun" / "editor_state.pt", 0),
    )
    # the seconds to the first step vary with the machine's state: two more of each, stopped there
    again = {
        k: [
            run(
                args(d, tmp / f"{k}{i}"),
                env,
                wait_for=(tmp / f"{k}{i}" / "editor_state.pt", 0),
                stop=True,
            )
            for i in range(2)
        ]
        for k, d in (("big", tmp / "data"), ("small", tmp / "small"))
    }
    (tmp / "whole.py").write_text(
        "import json, sys\nrows = [json.loads(line) for line in open(sys.argv[1])]\n"
    )
    whole = run([tmp / "whole.py", path], env)
    return {
        "lines": 2_000_000,
        "file_mb": path.stat().st_size / 2**20,
        "write_s": written,
        "n1000_wall_s": wall,
        "n1000_peak_rss_mb": rss,
        "n1000_seconds_to_first_step_runs": [start, *again["big"]],
        "small_n1000_seconds_to_first_step_runs": [s_start, *again["small"]],
        "whole_file_read_s": whole[0],
        "whole_file_peak_rss_mb": whole[1],
        "small_file_lines": 2_000,
        "small_n1000_peak_rss_mb": s_rss,
    }


def _speed_rows(b):
    rows = []
    if "speed" not in b:
        return rows
    s = b["speed"]
    rows += [
        (
            "`run_stream.py --n 500`: first run (empty cache) / second run, wall clock",
            f"{s['first_wall_s']:.0f} s / {s['second_wall_s']:.0f} s: **{s['second_over_first']:.2f}×** (≤ 0.6)",
        ),
        (
            "second run vs `--no-cache`: weights bit-exact, post-edit metrics equal",
            f"{s['cached_equals_uncached']['weights_bit_exact']}, {s['cached_equals_uncached']['post_equal']}",
        ),
        (
            "method's own work ÷ forward+backward (`overhead_ratio`, first / second run)",
            f"**{s['overhead_ratio']:.3f}** / {s['overhead_ratio_second']:.3f} (≤ 0.10)",
        ),
        (
            "seconds per edit, stableedit / ultraedit (same stream)",
            f"{s['seconds_per_edit']['stableedit']:.4f} / {s['seconds_per_edit']['ultraedit']:.4f}: "
            f"**{s['stableedit_over_ultraedit']:.2f}×** (≤ 1.3)",
        ),
        (
            "evaluator ÷ bare forward over the same tokens, sequences/s (> 1: batching and the LM head at answer positions only make the evaluator faster)",
            f"{s['evaluator']['evaluator']:.1f} / {s['evaluator']['bare_forward']:.1f}: "
            f"{s['evaluator_over_bare_forward']:.2f}×",
        ),
        (
            "8 float64 `eigh` of 576×576, one by one / side by side (`whitening.eigens`)",
            f"{s['eigh_8x576_seconds']['one_by_one']:.3f} s / {s['eigh_8x576_seconds']['side_by_side']:.3f} s",
        ),
    ]
    return rows


def _backward_rows(b):
    rows = []
    if "backward" not in b:
        return rows
    w = b["backward"]
    rows.append(
        (
            "forward+backward to the lowest edited layer ÷ a plain backward to the embeddings (every "
            f"weight's gradient, one pass; ours in chunks of 25 as a step runs), same 100-request {w['data']} batch",
            f"{w['capture_s']:.2f} s / {w['plain_backward_s']:.2f} s: **{w['capture_over_plain_backward']:.2f}×**",
        )
    )
    return rows


def _memory_rows(b):
    rows = []
    if "memory" not in b:
        return rows
    m = b["memory"]
    rss = {int(k): v for k, v in m["peak_rss_mb"].items()}
    rows.append(
        (
            "peak RSS, 3,000 vs 300 edits (100 evaluated)",
            f"{rss[3000]:.0f} vs {rss[300]:.0f} MB: **{m['ratio_3000_over_300']:.3f}×** (≤ 1.05)",
        )
    )
    return rows


def _stream_rows(b):
    rows = []
    if "stream" not in b:
        return rows
    t = b["stream"]
    big, small = (
        t["n1000_seconds_to_first_step_runs"],
        t["small_n1000_seconds_to_first_step_runs"],
    )
    each = lambda xs: ", ".join(f"{x:.1f}" for x in xs)  # noqa: E731
    rows += [
        (
            f"2M-line UltraEditBench JSONL ({t['file_mb']:.0f} MB), `--n 1000`: seconds to the first step"
            f" ({len(big)} runs: slowest; all)",
            f"**{max(big):.1f} s** (≤ 10); {each(big)}",
        ),
        (
            "... its peak RSS vs reading the whole file",
            f"{t['n1000_peak_rss_mb']:.0f} MB vs {t['whole_file_peak_rss_mb']:.0f} MB "
            f"({t['whole_file_read_s']:.0f} s to read)",
        ),
    ]
    rows.append(
        (
            f"... the same run on a 2,000-line file: seconds to the first step ({len(small)} runs: slowest; "
            "all), peak RSS",
            f"{max(small):.1f} s; {each(small)}; {t['small_n1000_peak_rss_mb']:.0f} MB",
        )
    )
    return rows


def _scale_rows(b):
    rows = []
    if "scale" not in b:
        return rows
    c = b["scale"]
    rows.append(
        (
            "`run_stream.py --n 20000` (synthetic, 1,000 evaluated): wall clock, peak RSS, s/edit",
            f"{c['wall_s'] / 60:.1f} min, {c['peak_rss_mb']:.0f} MB, {c['seconds_per_edit']:.4f} s",
        )
    )
    return rows


def table(b):
    """The speed table (results/speed.md): one row per figure of bench.json, with its target."""
    rows = []
    for part in (_speed_rows, _backward_rows, _memory_rows, _stream_rows, _scale_rows):
        rows += part(b)
    return "\n".join(
        ["| figure | measured (target) |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    )


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


def main(parts):
    if parts == ["table"]:
        print(table(json.loads((Path(__file__).parent / "bench.json").read_text())))
        return
    if set(parts) - set(PARTS):
        bad = sorted(set(parts) - set(PARTS))[0]
        print(
            f"bench.py: {'table runs alone' if bad == 'table' else f'unknown part {bad!r}'}; "
            f"parts: {', '.join(PARTS)}, or table alone",
            file=sys.stderr,
        )
        sys.exit(2)
    tmp = Path(tempfile.mkdtemp(prefix="stableedit-bench-"))
    # an empty run cache for the first run; the converted model is shared, not rebuilt
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
    main(sys.argv[1:] or ["speed", "backward", "memory", "stream"])
