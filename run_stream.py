"""Run a lifelong edit stream end to end (paper §4 Algorithm 1, §5 protocol).

    python run_stream.py                                   # SmolLM2-135M, synthetic stream, offline
    python run_stream.py --dataset zsre --n 1000           # the ZsRE sample in ../shared/data
    python run_stream.py --model gpt-j --n 20000           # the paper's setting, on a GPU box

Writes to --out (default runs/<timestamp>), every file atomically: results.json,
trajectory.csv, update_geometry.png, trajectory.png (with --eval-every) and
editor_state.pt, from which --resume continues a killed run bit-exactly. The state is saved at the
start, by --save-every (default: whenever 19x the last save's seconds have passed, so saves take at
most 5 % of the run), on Ctrl-C and at the end: a kill -9 loses the steps since the last save, which
--resume recomputes to the same bits.
"""
import json
import os
import signal
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

import cache
from data import DataError, check_lengths
from editor import Editor, NonFiniteError, RefusedStepError
from evaluate import edit_metrics, glue_scores, locality_tokens
from generation import generation_metrics
from hidden_shift import last_hidden, plot_shift, shift_prompts, shift_stats
from models import ModelError, load_model
from official import verbatim
from patch import apply_patch, read_patch, save_patch
from run_checks import clean_tmp, finite, requests_memory, same_layout, seal, stats_memory, unseal
from settings import RUN_FILES, fail, parse_args, resolve
from stream import eval_sample, load_stream, plan, segment_means
from trajectory import (atomic_write, geometry_curve, plot_geometry, plot_trajectory, short, spectrum_curve,
                        write_csv, write_json)

# what must match for --resume to continue the same stream
STREAM_KEYS = ("model", "dataset", "n", "batch", "method", "lr", "alpha", "prior", "pooled", "layers", "editor",
               "warmup", "seed", "dtype", "eval_every", "eval_n", "verbatim_targets", "generate", "step_size",
               "shuffle", "skip")


def save_due(every, done, when, took):
    """--save-every after `done` steps, the last save made at perf_counter `when` in `took` seconds:
    N steps, S seconds, or auto: once 19x the last save's seconds have passed (saves <= 5 % of the run)."""
    if every == "auto":
        return time.perf_counter() - when >= 19 * took
    return time.perf_counter() - when >= float(every[:-1]) if every.endswith("s") else done % int(every) == 0


def drift_norm(W, W0):
    """|W - W0|_F with W0 in host memory (the difference in the weight dtype, as the update was applied)."""
    return (W.detach().to(W0.device) - W0).float().norm().item()


def layer_widths(model, layers, method):
    """{layer: (d_out, full covariance?)} of the edited layers the model has (run_checks.stats_memory)."""
    named = dict(model.named_modules())
    return {n: (named[n].weight.shape[0 if isinstance(named[n], torch.nn.Linear) else 1], method == "stableedit")
            for n in layers if hasattr(named.get(n), "weight") and method not in ("no_ln", "ft")}


def save_model(model, tok, path):
    tmp = Path(f"{path}.tmp{os.getpid()}")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    os.replace(tmp, path)


# every file a run writes in --out: --overwrite removes them before the new run's first save
OUTPUTS = (*RUN_FILES, "update_geometry.png", "trajectory.png", "hidden_shift.png")


def refused(e, state_path):
    """The one line of a refused step (its state, the last good step, saved): exit 1 for NaN/Inf,
    2 for an update too large, which is a bad --lr."""
    if isinstance(e, NonFiniteError):
        print(f"run_stream.py: {e}; the last good step is saved in {state_path} (--resume repeats this step: "
              "remove its cause first)", file=sys.stderr)
        return 1
    print(f"run_stream.py: error: {e}; start again with a smaller --lr (and --overwrite)", file=sys.stderr)
    return 2


def step_row(step, kind, edits, wall, rep, ed, W0):
    """One trajectory.csv row: the step's loss and phase seconds, and per layer the update norm,
    adjacent cosine, bias norm, Sigma_g's condition number and top eigenvalue, and |W - W_0|."""
    row = {"step": step, "kind": kind, "edits": edits, "loss": rep["loss"], "wall_s": wall,
           **{f"{k}_s": v for k, v in rep["seconds"].items()}}
    for n, L in rep["layers"].items():
        row.update({f"norm/{short(n)}": L["delta_norm"], f"cos/{short(n)}": L["cos_prev"],
                    f"bias/{short(n)}": L["bias_norm"], f"cond/{short(n)}": L["cond"], f"lmax/{short(n)}": L["lmax"],
                    f"drift/{short(n)}": drift_norm(ed.modules[n].weight, W0[n])})
    return row


def patch_mode(args):
    """--apply-patch: the patch is read and checked before the model loads."""
    read_patch(args.apply_patch)
    model, tok, _ = load_model(args.model, args.dtype, args.device, args.device_map)
    meta = apply_patch(model, args.apply_patch)
    save_model(model, tok, args.save_model)
    print(f"applied {args.apply_patch} ({meta.get('method')}, {meta.get('edits')} edits of "
          f"{meta.get('dataset')}, {len(meta['layers'])} layers) to {args.model}; saved in {args.save_model}")
    return 0


# what a state holds, each with its type: anything else is another layout and is not resumed
STATE = {"config": dict, "done": int, "rows": list, "checkpoints": list, "editor": dict, "weights": dict,
         "rng": torch.Tensor, "ref": list, "pre": dict, "data": dict}


def read_state(path, cfg):
    """The state a --resume continues: readable without unpickling objects, its checksum intact, its
    layout this version's, and its stream settings those of this run; else one-line DataError."""
    if not path.exists():
        raise DataError(f"--resume: no editor_state.pt in {path.parent}")
    redo = "it cannot be resumed: start again with --overwrite, or into a new --out"
    try:                                               # never unpickle arbitrary objects
        state = torch.load(path, weights_only=True)
    except Exception as e:
        raise DataError(f"--resume: {path} is not a readable editor state ({type(e).__name__}); {redo}") from None
    try:
        state = unseal(state, str(path))
    except DataError as e:
        raise DataError(f"--resume: {e}; {redo}") from None
    bad = [k for k, t in STATE.items() if not isinstance(state.get(k), t)]
    if bad:
        raise DataError(f"--resume: {path} is not an editor state of this version ({bad[0]!r} is missing or "
                        f"not a {STATE[bad[0]].__name__}); {redo}")
    for k in STREAM_KEYS:                              # a key older states lack reads as its default
        if state["config"].get(k, cfg.get(k) if not cfg.get(k) else None) != cfg.get(k):
            raise DataError(f"--resume: the state in {path.parent} is for {k}={state['config'].get(k)!r}, "
                            f"this run asks {k}={cfg.get(k)!r}; refusing to mix two streams")
    return state


def data_digests(requests, warm, sample):
    """What a resumed run must read again: the stream, the warm-up and the evaluated requests."""
    return {"stream": cache.requests_digest(requests), "warm-up": cache.requests_digest(warm),
            "evaluation sample": cache.key(index=sample, requests=cache.requests_digest([requests[i] for i in sample]))}


def check_data(state, digests, path):
    """A resumed state must read the same requests it was built from (checked before the model loads)."""
    for k, v in digests.items():
        if state["data"].get(k) != v:
            raise DataError(f"--resume: the {k} requests differ from those the state in {path.parent} was built "
                            "from (a data file edited or reordered, or another --data-dir); refusing to mix two "
                            "datasets")


def check_resumed(state, ed, path):
    """A resumed state must fit this run's editor: statistics of its layout, weights of its layers'
    shapes, nothing non-finite."""
    same_layout(ed.stats_state(), state["editor"].get("stats"), f"--resume: {path} statistics")
    same_layout({n: m.weight.detach().cpu() for n, m in ed.modules.items()}, state["weights"],
                f"--resume: {path} weights")
    finite({"weights": state["weights"], "editor": state["editor"]}, f"--resume: {path}")


def main(argv=None):
    t_start = time.perf_counter()
    args = parse_args(argv)
    cfg = resolve(args)                                # validates the stream flags in every mode
    if args.apply_patch:
        return patch_mode(args)
    if args.print_config:
        print(json.dumps(cfg, indent=2))
        return 0
    out = Path(args.out or f"runs/{time.strftime('%Y%m%d-%H%M%S')}")
    state_path = out / "editor_state.pt"
    if out.is_dir():
        clean_tmp(out)                                 # what a killed write left
    state = read_state(state_path, cfg) if args.resume else None
    requests_memory(cfg["n"] + cfg["warmup"]["n"])
    requests, seg_of, warm = load_stream(cfg)
    sample = eval_sample(cfg)
    if not sample:
        raise DataError(f"--skip {args.skip}: none of the {args.eval_n} evaluated edits comes after it; raise --eval-n")
    wu = cfg["warmup"]
    if cfg["verbatim_targets"]:                        # the official codes' prompt + " " + target
        requests, warm = verbatim(requests), verbatim(warm)
    digests = data_digests(requests, warm, sample)
    if state is not None:
        check_data(state, digests, state_path)
    model, tok, _ = load_model(args.model, args.dtype, args.device, args.device_map)
    stats_memory(layer_widths(model, cfg["layers"], cfg["method"]), args.device)
    ed = Editor(model, tok, cfg["layers"], cfg["method"], cfg["lr"], cfg["alpha"], cfg["prior"], cfg["pooled"],
                step_size=cfg["step_size"], **cfg["editor"])
    check_lengths(tok, requests + warm, ed.max_length)
    if state is not None:
        check_resumed(state, ed, state_path)
    # the unedited weights, in host memory: an accelerator holds the model, not a second copy of it
    W0 = {n: m.weight.detach().to("cpu", copy=True) for n, m in ed.modules.items()}
    if args.hidden_shift:                              # before any resumed weights are loaded: the unedited model
        shift = shift_prompts(args.hidden_shift, args.data_dir, [p for r in requests for ps in r.locality.values()
                                                                 for p, _ in ps])
        H0 = last_hidden(model, tok, shift)
    out.mkdir(parents=True, exist_ok=True)
    steps = plan(cfg, len(warm))
    # fluency reads free generations from prompts the edits are not about: the evaluated requests'
    # locality prompts, each once
    free = list(dict.fromkeys(p for i in sample for ps in requests[i].locality.values() for p, _ in ps))[:64]
    # The pre-edit evaluation and a statistics-only warm-up at the start are pure functions of the
    # unedited weights and their inputs (cache.py): read when a run already computed them.
    hits = {"pre": "resumed" if state else "off", "warmup": "resumed" if state else "off"}
    n_cached = sum(k == "warmup" for k, _, _ in steps) if wu["mode"] == "stats" and steps[0][0] == "warmup" else 0
    if cfg["cache"] and state is None:
        same = dict(weights=cache.weights_digest(model), code=cache.code_digest(), dtype=args.dtype,
                    device=str(next(model.parameters()).device.type), tokenizer=cache.tokenizer_digest(tok),
                    attention=getattr(model.config, "_attn_implementation", None))
        pre_key = cache.key(**same, requests=cache.requests_digest([requests[i] for i in sample]),
                            generate=args.generate)
        # what a statistics-only warm-up reads: not the targets' settings (key_scale, eig_floor, lr)
        warm_key = cache.key(**same, requests=cache.requests_digest(warm), layers=cfg["layers"],
                             method=cfg["method"], prior=cfg["prior"], pooled=cfg["pooled"], batch=args.batch,
                             stats=cfg["editor"]["stats"], minibatch=cfg["editor"]["minibatch"],
                             max_length=ed.max_length)
    if state is None:
        got = cache.read("pre", pre_key) if cfg["cache"] else None
        hits["pre"] = "off" if not cfg["cache"] else "hit" if got else "miss"
        if got is None:
            ref = locality_tokens(model, tok, [requests[i] for i in sample])
            pre = edit_metrics(model, tok, [requests[i] for i in sample], reference=ref)
            got = {"ref": ref, "pre": {k: v for k, v in pre.items() if k != "per_request"}}
            if args.generate:
                got["pre"].update(generation_metrics(model, tok, [requests[i] for i in sample], free))
            if cfg["cache"]:
                cache.write("pre", pre_key, got)
        state = {"config": cfg, "data": digests, "done": 0, "rows": [], "checkpoints": [], **got,
                 "glue_pre": glue_scores(model, tok, args.data_dir) if args.glue else None}
        warm_got = cache.read("warmup", warm_key) if cfg["cache"] and n_cached else None
        if n_cached and cfg["cache"]:
            hits["warmup"] = "hit" if warm_got else "miss"
        if warm_got is not None:
            ed.load_stats_state(warm_got["stats"])
            state["rows"], state["done"] = warm_got["rows"], n_cached
    else:
        ed.load_state_dict(state["editor"])
        with torch.no_grad():
            for n, W in state["weights"].items():
                ed.modules[n].weight.copy_(W)
        torch.set_rng_state(state["rng"])

    def save():
        t0 = time.perf_counter()
        state.update(editor=ed.state_dict(), rng=torch.get_rng_state(),
                     weights={n: m.weight.detach() for n, m in ed.modules.items()})
        atomic_write(state_path, lambda f: torch.save(seal(state), f))
        saves.append((time.perf_counter(), time.perf_counter() - t0))     # (when, seconds it took)

    def evaluate(upto):
        """Metrics of the evaluated edits before stream index upto; per segment when there are several.
        Each request's own values (stream index -> metric) are kept for paired comparisons (Fig. 1b)."""
        idx = [i for i in sample if i < upto]
        sel = {i: j for j, i in enumerate(sample)}
        m = edit_metrics(model, tok, [requests[i] for i in idx], reference=[state["ref"][sel[i]] for i in idx])
        per = m.pop("per_request")
        state["per_request"] = {"index": idx, "prompt": [requests[i].prompt for i in idx], **per}
        if len(cfg["segments"]) > 1:
            m["segments"] = segment_means(per, [seg_of[i] for i in idx])
        if args.glue:
            m["glue"] = glue_scores(model, tok, args.data_dir)
        return m

    saves = [(time.perf_counter(), 0.0)]
    if not args.resume:
        for f in OUTPUTS if args.overwrite else ():    # the run being replaced: none of its files stays
            (out / f).unlink(missing_ok=True)
        save()                                         # resumable from the very first step
    interrupted = []
    signal.signal(signal.SIGINT, lambda *_: interrupted.append(True))   # finish the step, save, leave
    bar = tqdm(steps, initial=state["done"], desc=f"{cfg['method']} on {args.model}", unit="step")
    try:                                               # an error below never lands on the progress line
        for kind, lo, hi in steps[state["done"]:]:
            chunk = (warm if kind == "warmup" else requests)[lo:hi]
            t0 = time.perf_counter()
            try:
                rep = ed.edit(chunk, apply=kind == "edit" or wu["mode"] != "stats",
                              diagonal=kind == "warmup" and wu["mode"] == "paper")
            except RefusedStepError as e:
                bar.close()
                save()                                 # the refused step changed nothing: this is the last good one
                return refused(e, state_path)
            wall = time.perf_counter() - t0
            edits = sum(h - l for k, l, h in steps[:state["done"] + 1] if k == "edit")
            row = step_row(state["done"], kind, edits, wall, rep, ed, W0)
            if kind == "edit" and args.eval_every and (edits // args.eval_every > (edits - (hi - lo)) // args.eval_every
                                                       or hi == cfg["n"]):
                ck = {"edits": edits, **evaluate(hi)}
                state["checkpoints"].append(ck)
                row.update({k: v for k, v in ck.items() if k not in ("edits", "glue", "segments")})
            state["rows"].append(row)
            state["done"] += 1
            if hits["warmup"] == "miss" and state["done"] == n_cached:
                cache.write("warmup", warm_key, {"stats": ed.stats_state(), "rows": state["rows"]})
            if interrupted or state["done"] == len(steps) or save_due(args.save_every, state["done"], *saves[-1]):
                save()
            bar.update()
            bar.set_postfix(loss=f"{rep['loss']:.2f}", edits_per_s=f"{len(chunk) / wall:.1f}")
            if interrupted:
                bar.close()
                print(f"run_stream.py: interrupted after step {state['done']}; state saved in {state_path}; "
                      f"continue with --resume --out {out}", file=sys.stderr)
                return 130
    finally:
        bar.close()
    # The stream is saved: from here Ctrl-C stops at once, and --resume evaluates that state.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        post = state["checkpoints"][-1] if "efficacy" in state["rows"][-1] else evaluate(cfg["n"])
        if args.generate:
            post = {**post, **generation_metrics(model, tok, [requests[i] for i in sample], free)}
        edit_rows = [r for r in state["rows"] if r["kind"] == "edit"]
        fb = sum(r["forward_backward_s"] for r in edit_rows)
        method_s = sum(r.get(k, 0.0) for r in edit_rows for k in ("stats_s", "normalize_s", "solve_s", "apply_s"))
        timing = {"seconds_per_edit": sum(r["wall_s"] for r in edit_rows) / (cfg["n"] - cfg["skip"]),
                  "overhead_ratio": method_s / fb if fb else float("nan"),
                  # seconds this run spent: a warm-up read from the cache cost none of its recorded wall_s
                  "warmup_seconds": sum(r["wall_s"] for j, r in enumerate(state["rows"]) if r["kind"] == "warmup"
                                        and not (hits["warmup"] == "hit" and j < n_cached)),
                  "wall_seconds": time.perf_counter() - t_start, "cache": hits}
        # Adjacent updates are near-orthogonal (Thm 3.8), yet the total change |W_T - W_0| is what a long
        # stream spends of the model; the drift/ columns of trajectory.csv show how it grows with T.
        drift = {n: {"delta_fro": drift_norm(m.weight, W0[n]),
                     "weight_fro": W0[n].float().norm().item()} for n, m in ed.modules.items()}
        results = {"config": cfg, "lr": ed.lr, "pre": state["pre"], "post": {k: v for k, v in post.items() if k != "edits"},
                   "glue_pre": state["glue_pre"], "checkpoints": state["checkpoints"], "timing": timing,
                   "weight_drift": drift, "per_request": state["per_request"]}
        if args.hidden_shift:
            H1 = last_hidden(model, tok, shift)
            results["hidden_shift"] = shift_stats(H0, H1)
            plot_shift(out / "hidden_shift.png", H0, H1, f"{cfg['method']} on {args.model}, {len(shift)} prompts")
        write_json(out / "results.json", results)
        write_csv(out / "trajectory.csv", state["rows"])
        plot_geometry(out / "update_geometry.png", {cfg["method"]: geometry_curve(state["rows"])},
                      f"{args.model}, {args.dataset}", spectra={cfg["method"]: spectrum_curve(state["rows"])})
        if state["checkpoints"]:
            plot_trajectory(out / "trajectory.png", state["checkpoints"], f"{cfg['method']} on {args.model}")
        if args.save_model:
            save_model(model, tok, args.save_model)
        if args.save_patch:
            save_patch(args.save_patch, model, W0, {"model": args.model, "source": cfg["source"], "method": cfg["method"],
                                                    "lr": ed.lr, "edits": cfg["n"] - cfg["skip"], "dataset": args.dataset})
        how = {"stats": "statistics only", "applied": "applied", "paper": "applied, diagonal (Algorithm 1)"}
        warm_txt = f", warm-up {wu['n']} {wu['data']} ({how[wu['mode']]}{', read from the cache' * (hits['warmup'] == 'hit')})" \
            if wu["n"] else ", no warm-up"
        rep_txt = f" replicating {cfg['replicate']}" if cfg["replicate"] else ""
        step_txt = f" {cfg['step_size']:g}" if cfg["step_size"] else ""
        skip_txt = f" (the first {cfg['skip']} skipped)" if cfg["skip"] else ""
        print(f"\n{cfg['method']}{rep_txt} on {args.model}: {cfg['n']} edits of {args.dataset}{skip_txt}, {args.batch} per step"
              f"{warm_txt}; lr {ed.lr:.3g} ({cfg['origin']['lr']}{step_txt}), alpha {cfg['alpha']:g}")
        # the paper's four columns first, then whatever else the dataset scores (MedCF's locality probes,
        # WikiBigEdit's personas/reasoning, EasyEdit's portability); a column the data lacks is left out
        head = {"efficacy": "Eff", "generalization": "Gen", "specificity": "Spe", "retain": "retain"}
        cols = [k for k in head if k in post] + sorted(k for k in post if k not in head and k not in ("glue", "segments"))
        width = {k: max(8, len(head.get(k, k)) + 2) for k in cols}
        rows = [("pre-edit", state["pre"]), ("post-edit", post)] + [(f"  {s}", m) for s, m in post.get("segments", {}).items()]
        w0 = max(10, *(len(name) + 1 for name, _ in rows))
        print(f"{'':{w0}s}" + "".join(f"{head.get(k, k):>{width[k]}s}" for k in cols)
              + f"   (n = {len(sample)} evaluated edits)")
        for name, m in rows:
            print(f"{name:{w0}s}" + "".join(f"{m.get(k, float('nan')):{width[k]}.1f}" for k in cols))
        rel = [d["delta_fro"] / d["weight_fro"] for d in drift.values()]
        print(f"{timing['seconds_per_edit']:.3f} s per edit; method overhead {timing['overhead_ratio']:.3f}x "
              f"of forward+backward; |W_T - W_0| / |W_0| {min(rel):.3f}-{max(rel):.3f} over the edited layers; "
              f"{timing['wall_seconds']:.0f} s in all (cache: pre-edit {hits['pre']}, warm-up {hits['warmup']}); "
              f"outputs in {out}")
        if args.hidden_shift:
            h = results["hidden_shift"]
            print(f"hidden states of {h['n']} unrelated prompts (App. B.5): mean cos(pre, post) {h['mean_cosine']:.4f}, "
                  f"mean |h_post - h_pre| / |h_pre| {h['mean_rel_change']:.4f}, Frechet / tr(Sigma_pre) {h['frechet_rel']:.4f}")
        return 0
    except KeyboardInterrupt:
        print(f"run_stream.py: interrupted during the final evaluation; the edited state is saved in {state_path}; "
              f"evaluate it with --resume --out {out}", file=sys.stderr)
        return 130


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
