"""Per-step RSS of a run_stream.py run: current and peak RSS after every editor step and around each
evaluation, as `MEM ...` lines on stderr; it stores nothing (run from the repository root, the
script's path is run under these hooks):

    python results/rss_trace.py run_stream.py --n 3000 --eval-n 100 --out /tmp/mem3000 2>&1 | grep MEM
"""

import os
import runpy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import editor  # noqa: E402
import evaluate  # noqa: E402


def report(what):
    rss = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    # VmHWM, this process's own high-water mark: ru_maxrss would also carry a parent's RSS at fork
    peak = (
        int(next(x.split()[1] for x in open("/proc/self/status") if x.startswith("VmHWM"))) / 1024
    )
    print(f"MEM {what} rss={rss:.0f} max={peak:.0f} MB", file=sys.stderr, flush=True)


def traced(fn, before, after):
    def wrapper(*a, **k):
        if before:
            report(before)
        out = fn(*a, **k)
        report(after)
        return out

    return wrapper


def main():
    # run_stream imports these names when it runs, so the wrapped ones are what it calls
    editor.Editor.edit = traced(editor.Editor.edit, None, "step")
    evaluate.edit_metrics = traced(evaluate.edit_metrics, "pre-eval", "post-eval")
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
