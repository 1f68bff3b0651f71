"""How results/bench.py runs a script and times a call: `python argv` in a fresh process, its wall clock
and its own peak RSS (with, on demand, the seconds to its first saved edit step), a run's results.json,
and the mean seconds of a call. Used by `python results/bench.py` (results/bench.json) and
results/eigh_routes.py; it stores nothing itself.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
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
