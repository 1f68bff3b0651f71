"""The `stream` part of results/bench.py: a generated 2M-line UltraEditBench JSONL (the authors' layout),
the seconds to the first edit step and the peak RSS of a 1,000-edit run on it, against reading the whole
file and against a 2,000-line file; two more runs of each, stopped at the first step, give its spread.

    python results/bench.py stream               # results/bench.json's "stream"
"""

import json
import time

from bench_run import run


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
