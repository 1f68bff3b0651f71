"""Whole 6-8B models on this CPU: GPT-J-6B and Llama-3-8B built from their published configs with
random weights in bf16 (run_stream.py --random-weights), Table 6's ZsRE layers, stableedit and
ultraedit, one statistics-only warm-up step and two edit steps of 100 synthetic edits each.

Each configuration runs run_stream.py as a child process, measured from outside: wall seconds, peak
resident memory (the child's ru_maxrss, from wait4), the --plan peak of the same flags, the seconds of
each phase of each step (its trajectory.csv), one checkpoint's bytes and seconds (--save-every 1).
`resume` kills a GPT-J stream with SIGKILL during its third step, continues it with --resume, and
compares the final editor_state.pt with the uninterrupted run's tensor by tensor (torch.equal on the
edited weights, the statistics, the previous factors). `peer` times the official StableEdit update as
its code is written beside ours on the same two GPT-J blocks (results/peer_update.py).

    python results/whole.py run gpt-j stableedit      # one configuration into results/whole.json
    python results/whole.py resume gpt-j ultraedit    # kill -9 and --resume against a whole run
    python results/whole.py accept                    # the plain command: --n 100, default warm-up
    python results/whole.py plans                     # --plan's peaks, on this CPU and on a GPU

The runs' folders (with their 4-5 GB states) go to $STABLEEDIT_WHOLE (default /tmp/stableedit_whole);
their results.json and trajectory.csv are kept under results/whole/. Nothing else may run meanwhile:
the seconds are wall-clock seconds on 2 cores.
"""

import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STORE = HERE / "whole.json"
KEEP = HERE / "whole"
FLAGS = "--random-weights --dtype bfloat16 --batch 100 --warmup 100 --eval-n 0".split()
MEASURE = [*FLAGS, "--n", "200", "--warmup-mode", "stats", "--save-every", "1", "--overwrite"]
PHASES = ("forward_backward_s", "stats_s", "normalize_s", "solve_s", "apply_s")


def runs_dir():
    return Path(os.environ.get("STABLEEDIT_WHOLE", "/tmp/stableedit_whole"))


def child(args, out, kill_at=None):
    """Run run_stream.py with args into out; (exit code, wall seconds, peak RSS bytes). kill_at=k:
    SIGKILL once its progress line shows k steps done."""
    out.parent.mkdir(parents=True, exist_ok=True)
    log = open(out.parent / f"{out.name}.log", "w")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "run_stream.py", *args, "--out", str(out)],
        cwd=ROOT,
        stderr=log,
        stdout=log,
    )
    while kill_at is not None and proc.poll() is None:
        time.sleep(1)
        if f" {kill_at}/" in (out.parent / f"{out.name}.log").read_text(errors="replace")[-400:]:
            os.kill(proc.pid, signal.SIGKILL)
            break
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    log.close()
    return proc.returncode, time.perf_counter() - t0, usage.ru_maxrss * 1024


def plan_peak(args):
    """The --plan peak (GB) for the same flags, and the plan's printout."""
    got = subprocess.run(
        [sys.executable, "run_stream.py", *args, "--plan"], cwd=ROOT, capture_output=True, text=True
    )
    lines = got.stdout.strip().splitlines()
    return float(lines[-1].split()[1]), got.stdout


def steps(out):
    """Each step's kind, wall seconds and phase seconds, from the run's trajectory.csv."""
    with open(out / "trajectory.csv", newline="") as f:
        return [
            {"kind": r["kind"], "wall_s": float(r["wall_s"])}
            | {p: float(r[p]) for p in PHASES if r.get(p)}
            for r in csv.DictReader(f)
        ]


def measure(args, name):
    """One configuration, run and measured; its entry of results/whole.json."""
    out = runs_dir() / name
    peak_plan, plan_text = plan_peak(args)
    load_before = os.getloadavg()[0]  # what else ran: ~0 when this machine was otherwise idle
    code, wall, rss = child(args, out)
    entry = {"command": "python run_stream.py " + " ".join(args) + " --out DIR", "exit": code}
    entry |= {"wall_s": wall, "peak_rss": rss, "plan_peak": peak_plan * 1e9, "plan": plan_text}
    entry |= {"load_before": load_before, "load_after": os.getloadavg()[0]}
    if code == 0:
        res = json.loads((out / "results.json").read_text())
        entry |= {"steps": steps(out), "s_per_edit": res["timing"]["seconds_per_edit"]}
        entry |= {"dtype": res["config"]["dtype"], "layers": len(res["config"]["layers"])}
        entry |= {"save_bytes": (out / "editor_state.pt").stat().st_size}
        entry |= {"save_seconds": res["timing"].get("save_seconds")}
        (KEEP / name).mkdir(parents=True, exist_ok=True)
        for f in ("results.json", "trajectory.csv"):
            shutil.copy(out / f, KEEP / name / f)
    return entry


def same_state(a, b, path=""):
    """[paths where two loaded states differ]: tensors by torch.equal, other values by ==."""
    if isinstance(a, dict):
        if set(a) != set(b):
            return [path + "/{keys}"]
        return [d for k in a for d in same_state(a[k], b[k], f"{path}/{k}")]
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return [path + "/[len]"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in same_state(x, y, f"{path}/{i}")]
    if isinstance(a, torch.Tensor):
        return [] if torch.equal(a, b) else [path]
    return [] if a == b else [path]


def resume(model="gpt-j", method="stableedit"):
    """The measured run's flags three times: uninterrupted; SIGKILL during step 3; --resume of the
    killed one. The two final states compared tensor by tensor."""
    args = ["--model", model, "--method", method, *MEASURE]
    ref, out = runs_dir() / f"{model}_{method}_ref", runs_dir() / f"{model}_{method}_killed"
    whole = child(args, ref)
    killed = child(args, out, kill_at=2)
    resumed = child([a for a in args if a != "--overwrite"] + ["--resume"], out)
    load = dict(weights_only=True, mmap=True)
    a, b = (torch.load(d / "editor_state.pt", **load) for d in (ref, out))
    diff = same_state(
        {k: a[k] for k in ("weights", "editor", "rng")},
        {k: b[k] for k in ("weights", "editor", "rng")},
    )
    rows = [len(s["rows"]) for s in (a, b)]
    return {
        "model": model,
        "method": method,
        "uninterrupted": {"exit": whole[0], "wall_s": whole[1], "peak_rss": whole[2]},
        "killed": {"exit": killed[0], "wall_s": killed[1], "peak_rss": killed[2]},
        "resumed": {"exit": resumed[0], "wall_s": resumed[1], "peak_rss": resumed[2]},
        "steps_done": rows,
        "tensors_compared": "weights, editor (statistics, previous factors, lr, step), rng",
        "differing": diff,
    }


def plans():
    """The --plan peak of each model and method on this CPU and on a CUDA device (which it plans for
    without using one), for the measured flags."""
    out = {}
    for model in ("gpt-j", "llama3-8b"):
        for method in ("stableedit", "ultraedit"):
            for dev in ("cpu", "cuda"):
                args = ["--model", model, "--method", method, *MEASURE, "--device", dev]
                out[f"{model}/{method}/{dev}"] = plan_peak(args)[0] * 1e9
    return out


def store(key, value):
    data = json.loads(STORE.read_text()) if STORE.exists() else {"runs": {}}
    data["machine"] = {"cpus": os.cpu_count(), "torch": torch.__version__}
    if key.startswith("runs/"):
        data["runs"].setdefault(key.split("/")[1], {})[key.split("/")[2]] = value
    else:
        data[key] = value
    STORE.write_text(json.dumps(data, indent=1) + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("run", "resume", "accept", "plans"))
    p.add_argument("model", nargs="?", default="gpt-j")
    p.add_argument("method", nargs="?", default="stableedit")
    a = p.parse_args(argv)
    if a.what == "run":
        args = ["--model", a.model, "--method", a.method, *MEASURE]
        store(f"runs/{a.model}/{a.method}", measure(args, f"{a.model}_{a.method}"))
    elif a.what == "resume":
        store("resume", resume(a.model, a.method))
    elif a.what == "plans":
        store("plans", plans())
    else:
        store(
            "accept", measure(["--model", "gpt-j", *FLAGS, "--n", "100", "--overwrite"], "accept")
        )
    print(json.dumps(json.loads(STORE.read_text()), indent=1)[-1500:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
