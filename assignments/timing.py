"""Time each assignment's commands: the "Commands" bash block of its handout (assignments/tasks.py),
run line by line at the repository root, output discarded, into assignments/timings.json; the time
table of assignments/README.md is rewritten from it.

    python assignments/timing.py            # every assignment
    python assignments/timing.py a1 a3      # some; the others' entries in timings.json are kept

Each command runs through the shell with this interpreter's folder first on PATH, so `python` in a
handout is the Python that runs this script. A handout without its Commands block is one line and
exit code 2, before anything runs.
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from assignments.tasks import TASKS  # noqa: E402

OUT = ROOT / "assignments" / "timings.json"
README = ROOT / "assignments" / "README.md"
# a heading "Commands" (any level), then the first ```bash fence after it
BLOCK = re.compile(r"^#+\s*Commands\s*$.*?^```bash\s*$(.*?)^```\s*$", re.M | re.S)


def commands(key):
    """The command lines of assignment key's handout (blank lines and # comments left out)."""
    path = ROOT / "assignments" / TASKS[key]["handout"]
    if not path.is_file():
        raise ValueError(f"{key}: no handout {path.relative_to(ROOT)}")
    block = BLOCK.search(path.read_text(encoding="utf-8"))
    lines = [x.strip() for x in block.group(1).splitlines()] if block else []
    lines = [x for x in lines if x and not x.startswith("#")]
    if not lines:
        raise ValueError(f"{key}: {path.name} has no Commands bash block")
    return lines


def run(key, cmds):
    """{commands, seconds, returncodes, total_s, cpus} of running cmds in turn at the repository root."""
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]}
    seconds, codes = [], []
    for cmd in tqdm(cmds, desc=key, unit="cmd"):
        t0 = time.perf_counter()
        r = subprocess.run(
            cmd, shell=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        seconds.append(round(time.perf_counter() - t0, 2))
        codes.append(r.returncode)
    total, cpus = round(sum(seconds), 2), os.cpu_count()
    return dict(commands=cmds, seconds=seconds, returncodes=codes, total_s=total, cpus=cpus)


def row(key, entry):
    """The README's table row of an assignment, from its stored timing."""
    minutes = f" ({entry['total_s'] / 60:.1f} min)" if entry["total_s"] >= 60 else ""
    n = len(entry["commands"])
    return f"| {key} | {entry['total_s']:.0f} s{minutes}, {n} commands, {entry['cpus']} CPUs |"


def write_table(done):
    """Each assignment's row of README.md's time table rewritten from timings.json."""
    text = README.read_text(encoding="utf-8")
    for key, entry in done.items():
        text = re.sub(rf"^\| {key} \| .*\|$", row(key, entry), text, flags=re.M)
    README.write_text(text, encoding="utf-8")


def main(argv):
    wanted = argv or list(TASKS)
    unknown = [k for k in wanted if k not in TASKS]
    if unknown:
        choices = ", ".join(TASKS)
        print(f"timing.py: error: unknown assignment {unknown[0]!r}; choose from {choices}")
        return 2
    try:
        todo = {k: commands(k) for k in wanted}  # every handout checked before anything runs
    except ValueError as e:
        print(f"timing.py: error: {e}")
        return 2
    done = json.loads(OUT.read_text(encoding="utf-8")) if OUT.is_file() else {}
    for key, cmds in todo.items():
        done[key] = run(key, cmds)
        OUT.write_text(json.dumps(done, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        write_table(done)
        failed = [c for c, rc in zip(cmds, done[key]["returncodes"]) if rc != 0]
        note = f"; {len(failed)} failed, first: {failed[0]}" if failed else ""
        total, cpus = done[key]["total_s"], done[key]["cpus"]
        print(f"{key}: {len(cmds)} commands, {total:.1f} s on {cpus} CPUs{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
