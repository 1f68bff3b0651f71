"""Run a lifelong edit stream end to end (paper §4 Algorithm 1, §5 protocol).

    python run_stream.py                                   # SmolLM2-135M, synthetic stream, offline
    python run_stream.py --dataset zsre --n 1000           # the ZsRE sample in ../shared/data
    python run_stream.py --model gpt-j --n 20000           # the paper's setting, on a GPU box
    python run_stream.py --model gpt-j --dtype bfloat16 --plan     # will it fit: memory, disk, time
    python run_stream.py --model gpt-j --random-weights --dtype bfloat16 --n 200   # its real cost here

Writes to --out (default runs/<timestamp>), every file atomically: results.json,
trajectory.csv, update_geometry.png, trajectory.png (with --eval-every) and
editor_state.pt, from which --resume continues a killed run bit-exactly. The state is saved at the
start, by --save-every (default: whenever 19x the last save's seconds have passed, so saves take at
most 5 % of the run), on Ctrl-C and at the end: a kill -9 loses the steps since the last save, which
--resume recomputes to the same bits. The phases are in lab/phases.py, the flags in lab/settings.py.
"""

import json
import sys

from capture import DataError, ModelError
from lab.settings import fail, parse_args, resolve


def main(argv=None):
    """Algorithm 1: warm up the statistics, then edit the stream batch by batch, evaluated before
    and after (and at --eval-every checkpoints); returns the exit code."""
    args = parse_args(argv)
    cfg = resolve(args)  # every setting and the rule that set it; validates all flags
    if args.print_config:
        print(json.dumps(cfg, indent=2))
        return 0
    if args.plan:  # will it fit: the memory plan, nothing allocated
        from lab.plan import show

        return show(cfg, args.save_every)
    if args.apply_patch:  # no stream: a patch or adapter applied, or a patch turned into an adapter
        from lab.patch import patch_mode

        return patch_mode(args)
    from lab import phases as phase  # the model code: not needed to print the configuration

    run = phase.Run(args, cfg)
    phase.open_run(run)  # the output folder; with --resume, its state (checked)
    phase.read_stream(run)  # the stream, the warm-up requests, the evaluated sample
    phase.load_editor(run)  # model, tokenizer, editor; memory and lengths checked
    phase.start(run)  # pre-edit evaluation and warm-up statistics (cached), or resume
    code = edit_stream(run)  # the warm-up and edit steps of Algorithm 1, saved as they go
    return code if code is not None else phase.finish(run)  # final evaluation, files, summary


def edit_stream(run):
    """Algorithm 1's loop over the planned steps (lab/stream.plan: the warm-up's batches, then the
    stream's, or the warm-up placed elsewhere by --warmup-placement). A warm-up step feeds the statistics
    (and, with --warmup-mode applied or paper, edits too); an edit step is one Editor.edit: capture k
    and g, update the statistics, normalize, targets, ridge update, apply. StepLoop keeps progress,
    Ctrl-C, the save cadence and the exit codes out of the loop. None when every step ran, else the
    exit code."""
    from editor import RefusedStepError
    from lab.phases import StepLoop
    from lab.stream import warmup_step

    loop = StepLoop(run)
    for kind, requests in loop:
        try:
            if kind == "warmup":
                report = run.ed.edit(requests, **warmup_step(run.cfg["warmup"]["mode"]))
            else:
                report = run.ed.edit(requests)
        except RefusedStepError as e:
            return loop.refused(e)
        loop.record(report)  # the trajectory row, a checkpoint evaluation, a save when due
    return loop.code


def entry(argv=None):
    """main with the command line's error handling: a bad input is one line and exit code 2."""
    try:
        return main(argv)
    except (DataError, ModelError) as e:
        fail(e)
    except KeyboardInterrupt:
        fail("interrupted before the stream started; nothing was written", 130)


if __name__ == "__main__":
    sys.exit(entry())
