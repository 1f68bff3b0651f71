"""The phases of run_stream.main, Algorithm 1 end to end under §5's protocol: open or resume the
run, read the stream, load the model and the editor, the pre-edit evaluation and the warm-up
statistics (cached), the step loop, the final evaluation and the files.

A `Run` carries what the phases share (flags, configuration, data, model, editor, the state that
editor_state.pt holds); each phase fills in its part. Nothing here is needed to print the
configuration, so run_stream.py imports this module only after --print-config.

    run = Run(args, cfg)
    open_run(run); read_stream(run); load_editor(run); start(run)
    run_stream.edit_stream(run) or finish(run)   # Algorithm 1's loop, around a StepLoop
"""

import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from capture import DataError
from editor import Editor, NonFiniteError, dims
from evaluate import edit_metrics, glue_scores, locality_tokens
from lab import cache
from lab.fit import layer_info
from lab.generation import generation_metrics
from lab.hidden_shift import last_hidden, plot_shift, shift_prompts, shift_stats
from lab.lora import save_lora
from lab.models import load_model, random_weights
from lab.official import OfficialEditor, verbatim
from lab.outputs import (
    atomic_write,
    geometry_curve,
    plot_geometry,
    plot_trajectory,
    short,
    spectrum_curve,
    summary,
    write_csv,
    write_json,
)
from lab.patch import save_model, save_patch
from lab.paths import OUTPUTS, clean_tmp
from lab.stream import eval_sample, load_stream, plan, segment_means
from lab.validate import (
    finite,
    readable,
    requests_memory,
    same_layout,
    seal,
    stats_memory,
    tokenizable,
    unseal,
)

# what must match for --resume to continue the same stream
RANDOM_NOTE = (
    "random weights (--random-weights): a random model's metrics mean nothing; its seconds, memory "
    "and disk are those of the real model's size"
)
STREAM_KEYS = (
    "model",
    "dataset",
    "n",
    "batch",
    "method",
    "lr",
    "alpha",
    "prior",
    "pooled",
    "layers",
    "editor",
    "warmup",
    "seed",
    "dtype",
    "eval_every",
    "eval_n",
    "random_weights",
    "verbatim_targets",
    "generate",
    "step_size",
    "shuffle",
    "skip",
)
# what a state holds, each with its type: anything else is another layout and is not resumed
STATE = {
    "config": dict,
    "done": int,
    "rows": list,
    "checkpoints": list,
    "editor": dict,
    "weights": dict,
    "rng": torch.Tensor,
    "ref": list,
    "pre": dict,
    "data": dict,
}


@dataclass
class Run:
    """What the phases share, each field filled by the phase named beside it."""

    args: object  # the parsed flags
    cfg: dict  # every resolved setting and the rule that set it (lab/settings.resolve)
    t_start: float = field(default_factory=time.perf_counter)
    out: Path = None  # open_run: the output folder
    state: dict = None  # open_run / start: what editor_state.pt holds (STATE)
    resumed: bool = False  # open_run: --resume
    requests: list = None  # read_stream: the stream's edit requests
    seg_of: list = None  # read_stream: each request's segment (zsre:1000,medcf:300)
    warm: list = None  # read_stream: the warm-up's requests
    sample: list = None  # read_stream: the stream indices evaluated
    digests: dict = None  # read_stream: of the stream, warm-up and sample, checked on --resume
    free: list = None  # read_stream: prompts for free generation (fluency)
    steps: list = None  # read_stream: the planned (kind, lo, hi) steps (lab/stream.plan)
    model: object = None  # load_editor
    tok: object = None  # load_editor
    ed: object = None  # load_editor: the Editor (or OfficialEditor)
    W0: dict = None  # load_editor: the unedited weights of the edited layers, in host memory
    shift: list = None  # load_editor: --hidden-shift prompts
    H0: object = None  # load_editor: their last hidden states before editing
    saves: list = field(default_factory=list)  # (perf_counter when, seconds it took) of each save
    hits: dict = field(default_factory=dict)  # cache: pre-edit and warm-up: hit, miss, off, resumed
    n_cached: int = 0  # start: leading statistics-only warm-up steps the cache can hold
    warm_key: str = None  # start: the warm-up's cache key

    @property
    def state_path(self):
        return self.out / "editor_state.pt"


# ---------------------------------------------------------------- open, read, load


def open_run(run):
    """The output folder (what a killed write left there removed) and, with --resume, its state."""
    run.out = run.args.paths["--out"]  # resolved once, before any work (lab.paths.outputs)
    if run.out.is_dir():
        clean_tmp(run.out)
    if run.args.resume:
        run.state, run.resumed = read_state(run.state_path, run.cfg), True


def read_state(path, cfg):
    """The state a --resume continues: readable without unpickling objects, its checksum intact, its
    layout this version's, and its stream settings those of this run; else one-line DataError."""
    if not path.exists():
        raise DataError(f"--resume: no editor_state.pt in {path.parent}")
    redo = "it cannot be resumed: start again with --overwrite, or into a new --out"
    try:  # never unpickle arbitrary objects
        state = torch.load(path, weights_only=True)
    except Exception as e:
        raise DataError(
            f"--resume: {path} is not a readable editor state ({type(e).__name__}); {redo}"
        ) from None
    try:
        state = unseal(state, str(path))
    except DataError as e:
        raise DataError(f"--resume: {e}; {redo}") from None
    bad = [k for k, t in STATE.items() if not isinstance(state.get(k), t)]
    if bad:
        raise DataError(
            f"--resume: {path} is not an editor state of this version ({bad[0]!r} is missing or "
            f"not a {STATE[bad[0]].__name__}); {redo}"
        )
    if "prev" not in state["editor"]:  # the dense previous update of an older layout
        raise DataError(f"--resume: {path} holds an editor state of an older layout; {redo}")
    for k in STREAM_KEYS:  # a key older states lack reads as its default
        if state["config"].get(k, cfg.get(k) if not cfg.get(k) else None) != cfg.get(k):
            raise DataError(
                f"--resume: the state in {path.parent} is for {k}={state['config'].get(k)!r}, "
                f"this run asks {k}={cfg.get(k)!r}; refusing to mix two streams"
            )
    return state


def read_stream(run):
    """The stream's requests, the warm-up's, the evaluated sample; a resumed run must read the same."""
    cfg = run.cfg
    requests_memory(cfg["n"] + cfg["warmup"]["n"])
    run.requests, run.seg_of, run.warm = load_stream(cfg)
    readable(run.requests + run.warm)  # before the model loads and anything is written
    run.sample = eval_sample(cfg)
    if not run.sample and cfg["eval_n"]:
        raise DataError(
            f"--skip {cfg['skip']}: none of the {cfg['eval_n']} evaluated edits comes after it; "
            "raise --eval-n"
        )
    if cfg["verbatim_targets"]:  # the official codes' prompt + " " + target
        run.requests, run.warm = verbatim(run.requests), verbatim(run.warm)
    run.digests = {
        "stream": cache.requests_digest(run.requests),
        "warm-up": cache.requests_digest(run.warm),
        "evaluation sample": cache.key(
            index=run.sample,
            requests=cache.requests_digest([run.requests[i] for i in run.sample]),
        ),
    }
    for k, v in run.digests.items() if run.resumed else ():
        if run.state["data"].get(k) != v:
            raise DataError(
                f"--resume: the {k} requests differ from those the state in {run.out} was built from "
                "(a data file edited or reordered, or another --data-dir); refusing to mix two datasets"
            )
    # fluency reads free generations from prompts the edits are not about: the evaluated requests'
    # locality prompts, each once
    run.free = list(
        dict.fromkeys(
            p for i in run.sample for ps in run.requests[i].locality.values() for p, _ in ps
        )
    )[:64]
    run.steps = plan(cfg, len(run.warm))


def make_editor(model, tok, cfg):
    """The editor a resolved configuration asks for: an OfficialEditor where it takes one of an official
    code's choices (a pooled normalizer, its statistics, batching or floor, the diagonal warm-up:
    --replicate, --pooled, --warmup-mode paper, results/sweep.py), else the Editor."""
    ed = dict(cfg["editor"])
    method = dict(method=cfg["method"], lr=cfg["lr"], alpha=cfg["alpha"], prior=cfg["prior"])
    method.update(step_size=cfg["step_size"], key_scale=ed.pop("key_scale"), eigh=ed.pop("eigh"))
    if not (ed or cfg["pooled"] or cfg["warmup"]["mode"] == "paper"):
        return Editor(model, tok, cfg["layers"], **method)
    official = dict(pooled=cfg["pooled"], stats="niw", minibatch=None, eig_floor="relative")
    return OfficialEditor(model, tok, cfg["layers"], **method, **official | ed)


def layer_widths(model, layers, method):
    """{layer: (d_out, full covariance?)} of the edited layers the model has (lab.validate.stats_memory)."""
    named = dict(model.named_modules())
    return {
        n: (dims(named[n])[1], method == "stableedit")
        for n in layers
        if hasattr(named.get(n), "weight") and method not in ("no_ln", "ft")
    }


def load_editor(run):
    """The model, its tokenizer and the editor, checked before any step: the statistics fit in memory,
    every target fits a step, a resumed state fits the editor; the unedited weights kept in host memory."""
    args, cfg = run.args, run.cfg
    if cfg["random_weights"]:
        run.model, run.tok, _ = random_weights(args.model, args.dtype, args.device, args.seed)
    else:
        run.model, run.tok, _ = load_model(args.model, args.dtype, args.device, args.device_map)
    stats_memory(layer_widths(run.model, cfg["layers"], cfg["method"]), args.device)
    run.ed = make_editor(run.model, run.tok, cfg)
    tokenizable(run.tok, run.requests + run.warm, run.ed.max_length)
    if run.resumed:
        where = f"--resume: {run.state_path}"
        same_layout(run.ed.stats_state(), run.state["editor"].get("stats"), f"{where} statistics")
        same_layout(
            {n: m.weight.detach().cpu() for n, m in run.ed.modules.items()},
            run.state["weights"],
            f"{where} weights",
        )
        finite({"weights": run.state["weights"], "editor": run.state["editor"]}, where)
    # an accelerator holds the model, not a second copy of it
    run.W0 = {n: m.weight.detach().to("cpu", copy=True) for n, m in run.ed.modules.items()}
    if args.hidden_shift:  # before any resumed weights are loaded: the unedited model
        locality = [p for r in run.requests for ps in r.locality.values() for p, _ in ps]
        run.shift = shift_prompts(args.hidden_shift, args.data_dir, locality)
        run.H0 = last_hidden(run.model, run.tok, run.shift)
    run.out.mkdir(parents=True, exist_ok=True)


# ---------------------------------------------------------------- start: pre-edit pass, warm-up statistics


def start(run):
    """A fresh run: the pre-edit evaluation and the leading statistics-only warm-up, each read from the
    cache when a run already computed them (they depend only on the unedited weights and their
    inputs, lab/cache.py), then the first save. A resumed run: its state loaded into the editor."""
    cfg, ed = run.cfg, run.ed
    if run.resumed:
        run.hits = {"pre": "resumed", "warmup": "resumed"}
        # popped: once loaded, the file's copies of the statistics and weights would be dead weight
        ed.load_state_dict(run.state.pop("editor"))
        with torch.no_grad():
            for n, W in run.state.pop("weights").items():
                ed.modules[n].weight.copy_(W)
        torch.set_rng_state(run.state.pop("rng"))
        run.saves.append((time.perf_counter(), 0.0))
        return
    evaluated = [run.requests[i] for i in run.sample]
    warm_first = run.steps[0][0] == "warmup" and cfg["warmup"]["mode"] == "stats"
    run.n_cached = sum(k == "warmup" for k, _, _ in run.steps) if warm_first else 0
    key = cache.pre_key(run.model, run.tok, cfg, evaluated) if cfg["cache"] else None
    got = cache.read("pre", key) if key else None
    run.hits = {"pre": "off" if not key else "hit" if got else "miss", "warmup": "off"}
    if got is None:
        got = pre_edit(run, evaluated) if evaluated else {"ref": [], "pre": {}}
        if key:
            cache.write("pre", key, got)
    run.state = {
        "config": cfg,
        "data": run.digests,
        "done": 0,
        "rows": [],
        "checkpoints": [],
        **got,
        "glue_pre": glue_scores(run.model, run.tok, cfg["data_dir"]) if cfg["glue"] else None,
    }
    if cfg["cache"] and run.n_cached:
        run.warm_key = cache.warmup_key(run.model, run.tok, cfg, run.warm, ed.max_length)
        warm = cache.read("warmup", run.warm_key)
        run.hits["warmup"] = "hit" if warm else "miss"
        if warm is not None:
            ed.load_stats_state(warm["stats"])
            run.state["rows"], run.state["done"] = warm["rows"], run.n_cached
    for f in (
        OUTPUTS if run.args.overwrite else ()
    ):  # the run being replaced: none of its files stays
        (run.out / f).unlink(missing_ok=True)
    run.saves.append((time.perf_counter(), 0.0))
    save(run)  # resumable from the very first step


def pre_edit(run, evaluated):
    """The unedited model on the evaluated requests: its locality answers (the reference retain is
    scored against) and its metrics."""
    ref = locality_tokens(run.model, run.tok, evaluated)
    pre = edit_metrics(run.model, run.tok, evaluated, reference=ref)
    got = {"ref": ref, "pre": {k: v for k, v in pre.items() if k != "per_request"}}
    if run.cfg["generate"]:
        got["pre"].update(generation_metrics(run.model, run.tok, evaluated, run.free))
    return got


def save(run):
    """editor_state.pt: the state with the editor's statistics, the RNG and the edited weights, sealed."""
    t0 = time.perf_counter()
    # built for the write only: kept in run.state, it would hold this save's Psi alive after the next
    # step replaced it (2.3 GB on GPT-J)
    body = run.state | dict(
        editor=run.ed.state_dict(),
        rng=torch.get_rng_state(),
        weights={n: m.weight.detach() for n, m in run.ed.modules.items()},
    )
    atomic_write(run.state_path, lambda f: torch.save(seal(body), f))
    run.saves.append((time.perf_counter(), time.perf_counter() - t0))


def save_due(every, done, when, took):
    """--save-every after `done` steps, the last save made at perf_counter `when` in `took` seconds:
    N steps, S seconds, or auto: once 19x the last save's seconds have passed (saves <= 5 % of the run)."""
    if every == "auto":
        return time.perf_counter() - when >= 19 * took
    return (
        time.perf_counter() - when >= float(every[:-1])
        if every.endswith("s")
        else done % int(every) == 0
    )


# ---------------------------------------------------------------- the step loop


class StepLoop:
    """What surrounds Algorithm 1's step loop (run_stream.edit_stream), kept out of it: iterating
    yields (kind, requests) of each remaining planned step under a progress bar; record() files the
    step's row and saves when --save-every is due; Ctrl-C finishes the step, saves and ends the loop
    with code 130; refused() saves the last good state and returns the exit code (1 or 2). code stays
    None when every step ran."""

    def __init__(self, run):
        self.run, self.code, self.interrupted = run, None, False
        self.step, self.t0, self.bar = None, None, None

    def __iter__(self):
        run = self.run
        signal.signal(signal.SIGINT, lambda *_: setattr(self, "interrupted", True))
        desc = f"{run.cfg['method']} on {run.cfg['model']}"
        self.bar = tqdm(run.steps, initial=run.state["done"], desc=desc, unit="step")
        try:  # an error never lands on the progress line
            for kind, lo, hi in run.steps[run.state["done"] :]:
                self.step, self.t0 = (kind, lo, hi), time.perf_counter()
                yield kind, (run.warm if kind == "warmup" else run.requests)[lo:hi]
                if self.interrupted:
                    self.code = 130
                    self.bar.close()
                    print(
                        f"run_stream.py: interrupted after step {run.state['done']}; state saved in "
                        f"{run.state_path}; continue with --resume --out {run.out}",
                        file=sys.stderr,
                    )
                    return
        finally:
            self.bar.close()

    def record(self, report):
        """The step's trajectory row and checkpoint (after_step), a save when due, the progress line."""
        run, (kind, lo, hi) = self.run, self.step
        wall = time.perf_counter() - self.t0
        after_step(run, kind, lo, hi, report, wall)
        last = run.state["done"] == len(run.steps)
        if (
            self.interrupted
            or last
            or save_due(run.args.save_every, run.state["done"], *run.saves[-1])
        ):
            save(run)
        self.bar.update()
        self.bar.set_postfix(loss=f"{report['loss']:.2f}", edits_per_s=f"{(hi - lo) / wall:.1f}")

    def refused(self, e):
        self.bar.close()
        save(self.run)  # the refused step changed nothing: the last good one
        return refused(e, self.run.state_path)


def after_step(run, kind, lo, hi, rep, wall):
    """The step's trajectory row, a checkpoint evaluation where --eval-every falls, the warm-up cache."""
    state, every = run.state, run.args.eval_every
    edits = sum(h - l for k, l, h in run.steps[: state["done"] + 1] if k == "edit")
    row = step_row(state["done"], kind, edits, wall, rep, run.ed, run.W0)
    if (
        kind == "edit"
        and every
        and (edits // every > (edits - (hi - lo)) // every or hi == run.cfg["n"])
    ):
        ck = {"edits": edits, **metrics_upto(run, hi)}
        state["checkpoints"].append(ck)
        row.update({k: v for k, v in ck.items() if k not in ("edits", "glue", "segments")})
    state["rows"].append(row)
    state["done"] += 1
    if run.hits["warmup"] == "miss" and state["done"] == run.n_cached:
        cache.write("warmup", run.warm_key, {"stats": run.ed.stats_state(), "rows": state["rows"]})


def drift_norm(W, W0):
    """|W - W0|_F with W0 in host memory (the difference in the weight dtype, as the update was applied)."""
    return (W.detach().to(W0.device) - W0).float().norm().item()


def step_row(step, kind, edits, wall, rep, ed, W0):
    """One trajectory.csv row: the step's loss and phase seconds, and per layer the update norm,
    adjacent cosine, bias norm, Sigma_g's condition number and top eigenvalue, and |W - W_0|."""
    row = {
        "step": step,
        "kind": kind,
        "edits": edits,
        "loss": rep["loss"],
        "wall_s": wall,
        **{f"{k}_s": v for k, v in rep["seconds"].items()},
    }
    for n, L in rep["layers"].items():
        row.update(
            {
                f"norm/{short(n)}": L["delta_norm"],
                f"cos/{short(n)}": L["cos_prev"],
                f"bias/{short(n)}": L["bias_norm"],
                f"cond/{short(n)}": L["cond"],
                f"lmax/{short(n)}": L["lmax"],
                f"drift/{short(n)}": drift_norm(ed.modules[n].weight, W0[n]),
            }
        )
    return row


def refused(e, state_path):
    """The one line of a refused step (its state, the last good step, saved): exit 1 for NaN/Inf,
    2 for an update too large, which is a bad --lr."""
    if isinstance(e, NonFiniteError):
        print(
            f"run_stream.py: {e}; the last good step is saved in {state_path} (--resume repeats this step: "
            "remove its cause first)",
            file=sys.stderr,
        )
        return 1
    print(
        f"run_stream.py: error: {e}; start again with a smaller --lr (and --overwrite)",
        file=sys.stderr,
    )
    return 2


def metrics_upto(run, upto):
    """Metrics of the evaluated edits before stream index upto; per segment when there are several.
    Each request's own values (stream index -> metric) are kept for paired comparisons (Fig. 1b)."""
    idx = [i for i in run.sample if i < upto]
    sel = {i: j for j, i in enumerate(run.sample)}
    m = edit_metrics(
        run.model,
        run.tok,
        [run.requests[i] for i in idx],
        reference=[run.state["ref"][sel[i]] for i in idx],
    )
    per = m.pop("per_request")
    run.state["per_request"] = {
        "index": idx,
        "prompt": [run.requests[i].prompt for i in idx],
        **per,
    }
    if len(run.cfg["segments"]) > 1:
        m["segments"] = segment_means(per, [run.seg_of[i] for i in idx])
    if run.cfg["glue"]:
        m["glue"] = glue_scores(run.model, run.tok, run.cfg["data_dir"])
    return m


# ---------------------------------------------------------------- finish


def finish(run):
    """The final evaluation, results.json, trajectory.csv, the figures, --save-model / --save-patch and
    the summary. The stream is saved: Ctrl-C now stops at once (130), and --resume evaluates the state."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        results = final_results(run)
        write_outputs(run, results)
        print(summary(results, run.out))
        return 0
    except KeyboardInterrupt:
        print(
            f"run_stream.py: interrupted during the final evaluation; the edited state is saved in "
            f"{run.state_path}; evaluate it with --resume --out {run.out}",
            file=sys.stderr,
        )
        return 130


def run_timing(run):
    """results.json's timing: seconds per edit, the method's overhead over forward+backward, the
    warm-up's and the whole run's seconds, each save's seconds, the cache's hits."""
    cfg, state = run.cfg, run.state
    edit_rows = [r for r in state["rows"] if r["kind"] == "edit"]
    fb = sum(r["forward_backward_s"] for r in edit_rows)
    method_s = sum(
        r.get(k, 0.0) for r in edit_rows for k in ("stats_s", "normalize_s", "solve_s", "apply_s")
    )
    return {
        "seconds_per_edit": sum(r["wall_s"] for r in edit_rows) / (cfg["n"] - cfg["skip"]),
        "overhead_ratio": method_s / fb if fb else float("nan"),
        # seconds this run spent: a warm-up read from the cache cost none of its recorded wall_s
        "warmup_seconds": sum(
            r["wall_s"]
            for j, r in enumerate(state["rows"])
            if r["kind"] == "warmup" and not (run.hits["warmup"] == "hit" and j < run.n_cached)
        ),
        "wall_seconds": time.perf_counter() - run.t_start,
        "save_seconds": [took for _, took in run.saves if took > 0],  # each editor_state.pt written
        "cache": run.hits,
    }


def final_results(run):
    """results.json's content: configuration, pre/post metrics, checkpoints, timing, |W_T - W_0|."""
    cfg, state = run.cfg, run.state
    if not run.sample:  # --eval-n 0
        post, state["per_request"] = {}, {"index": []}
    elif "efficacy" in state["rows"][-1]:
        post = state["checkpoints"][-1]
    else:
        post = metrics_upto(run, cfg["n"])
    if cfg["generate"] and run.sample:
        post = {
            **post,
            **generation_metrics(
                run.model, run.tok, [run.requests[i] for i in run.sample], run.free
            ),
        }
    timing = run_timing(run)
    # Adjacent updates are near-orthogonal (Thm 3.8), yet the total change |W_T - W_0| is what a long
    # stream spends of the model; the drift/ columns of trajectory.csv show how it grows with T.
    drift = {
        n: {
            "delta_fro": drift_norm(m.weight, run.W0[n]),
            "weight_fro": run.W0[n].float().norm().item(),
        }
        for n, m in run.ed.modules.items()
    }
    results = {
        "config": cfg,
        "lr": run.ed.lr,
        "pre": state["pre"],
        "post": {k: v for k, v in post.items() if k != "edits"},
        "glue_pre": state["glue_pre"],
        "checkpoints": state["checkpoints"],
        "timing": timing,
        "weight_drift": drift,
        "per_request": state["per_request"],
    }
    if cfg["random_weights"]:
        results["note"] = RANDOM_NOTE
    if cfg["hidden_shift"]:
        H1 = last_hidden(run.model, run.tok, run.shift)
        results["hidden_shift"] = shift_stats(run.H0, H1)
        plot_shift(
            run.out / "hidden_shift.png",
            run.H0,
            H1,
            f"{cfg['method']} on {cfg['model']}, {len(run.shift)} prompts",
        )
    return results


def write_outputs(run, results):
    cfg, out, rows = run.cfg, run.out, run.state["rows"]
    write_json(out / "results.json", results)
    write_csv(out / "trajectory.csv", rows)
    plot_geometry(
        out / "update_geometry.png",
        {cfg["method"]: geometry_curve(rows)},
        f"{cfg['model']}, {cfg['dataset']}"
        + (", random weights: its metrics mean nothing" if cfg["random_weights"] else ""),
        spectra={cfg["method"]: spectrum_curve(rows)},
    )
    if run.state["checkpoints"]:
        plot_trajectory(
            out / "trajectory.png", run.state["checkpoints"], f"{cfg['method']} on {cfg['model']}"
        )
    paths = run.args.paths  # resolved before any work (lab.paths.outputs)
    if cfg["save_model"]:
        save_model(run.model, run.tok, paths["--save-model"])
    meta = {
        "model": cfg["model"],
        "source": cfg["source"],
        "method": cfg["method"],
        "lr": run.ed.lr,
        "edits": cfg["n"] - cfg["skip"],
        "dataset": cfg["dataset"],
    }
    if cfg["save_patch"]:
        save_patch(paths["--save-patch"], run.model, run.W0, meta)
    if cfg["save_lora"]:
        named = dict(run.model.named_modules())
        diff = {n: named[n].weight.detach().cpu().float() - W.float() for n, W in run.W0.items()}
        # the adapter records |W_0|_F, |W_T|_F and the fingerprint as a patch does: check_fit reads them
        meta |= layer_info(run.model, run.W0)
        save_lora(paths["--save-lora"], diff, run.model, meta, cfg["lora_rank"])
