"""Where the seconds before a stream's first edit step go.

    python results/first_step.py --dataset ultraeditbench --data-dir D --n 1000 --warmup 0 --eval-n 10 --no-cache --out /tmp/fs

Runs run_stream.main with these arguments (its phases timed in lab/phases.py) and prints, for each phase — imports, reading the
stream's records, tokenizer and model load, the pre-edit pass, the first state file — the clock
(seconds since this script started) at its end and its own seconds; it stops where the first edit
step would begin. Nothing is edited.
"""

import sys
import time
from pathlib import Path

t0 = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import transformers  # noqa: E402

import editor  # noqa: E402
import run_stream  # noqa: E402
from capture import DataError, ModelError  # noqa: E402
from lab import phases  # noqa: E402
from lab.settings import fail  # noqa: E402


def clock():
    return time.perf_counter() - t0


def timed(owner, name, what):
    f = getattr(owner, name)

    def g(*a, **k):
        s = time.perf_counter()
        out = f(*a, **k)
        print(f"{clock():6.2f} s  {what} ({time.perf_counter() - s:.2f} s)", file=sys.stderr)
        return out

    setattr(owner, name, g)


class FirstStep(Exception):
    pass


def first_step(*a, **k):
    raise FirstStep


def main(argv=None):
    # naming the Auto classes runs transformers' lazy imports: counted with the imports
    timed(transformers.AutoTokenizer, "from_pretrained", "tokenizer loaded")
    timed(transformers.AutoModelForCausalLM, "from_pretrained", "model loaded")
    print(f"{clock():6.2f} s  imports (torch, transformers, run_stream)", file=sys.stderr)
    timed(phases, "load_stream", "stream records read")
    timed(phases, "locality_tokens", "pre-edit locality references")
    timed(phases, "edit_metrics", "pre-edit metrics")
    timed(phases, "atomic_write", "first state file written")
    editor.Editor.edit = first_step
    try:
        run_stream.main(sys.argv[1:] if argv is None else argv)
    except FirstStep:
        print(f"\n{clock():6.2f} s  the first edit step starts here (stopped)", file=sys.stderr)
    except (DataError, ModelError) as e:
        fail(e)


if __name__ == "__main__":
    main()
