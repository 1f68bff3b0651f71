"""Every setting of a run and the rule that set it: run_stream.py's command line (paper A.4.1's
hyper-parameters, Table 6's layers, Algorithm 1's warm-up, §5's protocol).

A value comes from its flag, else from --replicate (lab/official.py: an official code's settings),
else from the model's preset (lab/models.py: Table 6 for the 7-8B models, our calibration for the
small ones), else from the defaults here; `resolve` records which rule set each value in
`origin`, and that object is what --print-config prints and results.json keeps.

    cfg = resolve(parse_args(["--model", "gpt-j", "--dataset", "fever"]))   # nothing is loaded
"""

import argparse
import codecs
import math
import sys
from pathlib import Path

import torch

from capture import DataError
from lab.models import default_layers, model_skeleton
from lab.paths import outputs
from lab.presets import (
    PAPER_MODELS,
    PRESETS,
    default_step_size,
    preset_layers,
    preset_lr,
    preset_warmup,
    table6_row,
)
from lab.stream import IN_DOMAIN, PLACEMENTS, WARMUP_MODES, segments, used
from whitening import METHODS, ROUTE_WIDTH, ROUTES, route

# --replicate NAME: OfficialEditor keyword arguments (lab/official.py says what each choice does), and the
# warm-up of each official code
REPLICAS = {
    "ultraedit-official": dict(
        editor=dict(
            method="ultraedit",
            pooled=True,
            alpha=1.0,
            stats="official-unbiased",
            minibatch=10,
            eig_floor="absolute",
        ),
        warmup=0,
    ),
    "stableedit-official": dict(
        editor=dict(
            method="stableedit",
            pooled=True,
            alpha=10.0,
            stats="official-biased",
            minibatch=10,
            eig_floor="absolute",
        ),
        warmup_mode="paper",
    ),
}


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2, no usage dump
        fail(message)


def fail(message, code=2):
    print(f"{Path(sys.argv[0]).name}: error: {message}", file=sys.stderr)
    sys.exit(code)


def positive(kind):
    def parse(s):
        try:
            v = kind(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{s!r} is not a number") from None
        if isinstance(v, float) and not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {s} (read as {v})")
        if not v > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {s}")
        return v

    return parse


def save_every(s):
    """'auto', a positive step count 'N' or a positive number of seconds 'Ns'."""
    if s == "auto":
        return s
    positive(float if s.endswith("s") else int)(s[:-1] if s.endswith("s") else s)
    return s


def encoding(s):
    try:
        return codecs.lookup(s).name
    except LookupError:
        raise argparse.ArgumentTypeError(
            f"{s!r} is not a text encoding Python knows (e.g. utf-8, latin-1, utf-16)"
        ) from None


def lora_rank(s):
    return s if s == "full" else positive(int)(s)


def eval_n(s):
    """'all', 0 (no evaluation) or a positive count."""
    if s == "all":
        return s
    return 0 if s.strip() == "0" else positive(int)(s)


def _data_flags(a):
    """The model and the stream: which requests, how many, in which order."""
    a(
        "--model",
        default="smollm2-135m",
        help=f"preset ({', '.join(PRESETS)}), HF hub id or local path",
    )
    a(
        "--dataset",
        default="synthetic",
        help="synthetic, zsre, zsre-calib, counterfact, fever, wikibigedit, "
        "ultraeditbench, medcf, or a JSON/JSONL file (ours, EasyEdit, "
        "ZsRE or CounterFact layout, told by its first record); "
        "name:k,name:k,... for one stream of segments (App. B.6.4)",
    )
    a("--data-dir", help="benchmark folder (default: $STABLEEDIT_DATA, else ../shared/data)")
    a(
        "--encoding",
        type=encoding,
        help="text encoding of a dataset file (default: UTF-8, with or without a byte-order mark)",
    )
    a(
        "--n",
        type=positive(int),
        help="number of edits in the target stream (default 1000; the segments' sum)",
    )
    a("--shuffle", action="store_true", help="edit each segment's records in a --seed random order")
    a(
        "--skip",
        type=int,
        default=0,
        help="run only the edits from the K-th on, and evaluate only those of "
        "the full stream's sample (Figure 1b)",
    )
    a("--batch", type=positive(int), default=100, help="edits per step")


def _method_flags(a):
    """The method and its hyper-parameters (A.4.1, Table 6)."""
    a(
        "--method",
        choices=METHODS,
        help="normalization: full (stableedit, default), diagonal (ultraedit), none "
        "(no_ln); ft: plain fine-tuning of the same layers",
    )
    a(
        "--replicate",
        choices=REPLICAS,
        help="every setting and algorithmic choice of an official code (lab/official.py)",
    )
    a(
        "--lr",
        type=positive(float),
        help="step size of the targets V = -lr |k_hat|^2 g_hat (default: preset, "
        "scaled down as 1/n beyond the preset's calibrated stream length)",
    )
    a(
        "--step-size",
        type=positive(float),
        help="instead of --lr: the first step sets the lr so that the mean "
        "|Delta|_F / |W|_F over the edited layers is this, then keeps it "
        "(default for a model without a preset: lab/presets.py STEP_SIZE)",
    )
    a("--alpha", type=positive(float), help="ridge strength (default: preset, 10)")
    a(
        "--no-key-scale",
        action="store_true",
        help="App. B.6.5: targets V = -lr d_in g_hat, the per-token "
        "||k_hat_i||^2 replaced by its mean d_in (same lr, same size)",
    )
    a(
        "--layers",
        nargs="+",
        help="module names to edit (default: the preset's Table 6 row for --dataset)",
    )
    a(
        "--prior",
        type=positive(float),
        help="NIW prior strength: Psi0 = prior * (first batch's variance) * I, "
        "in virtual samples (default: 1)",
    )
    a(
        "--pooled",
        action="store_true",
        default=None,
        help="one normalizer shared by layers of equal shape, as "
        "the official code (default: per layer, as the theory)",
    )


def _protocol_flags(a):
    """Algorithm 1's warm-up and §5's evaluation protocol."""
    a(
        "--warmup",
        type=int,
        help="number of warm-up edits (Algorithm 1: 2K, 20K for streams of 100K+ edits "
        "of a paper model); 0 for none",
    )
    a(
        "--warmup-mode",
        choices=WARMUP_MODES,
        help="stats: statistics only; applied: the edits change the weights "
        "too; paper: Algorithm 1 (in-domain, applied, diagonal)",
    )
    a(
        "--warmup-data",
        help="dataset of the warm-up edits (default: in-domain for --warmup-mode paper, else "
        "synthetic; records after the stream if it is --dataset)",
    )
    a(
        "--warmup-placement",
        choices=PLACEMENTS,
        default="start",
        help="where in the stream the warm-up runs",
    )
    a(
        "--eval-every",
        type=int,
        default=0,
        help="evaluate the edits so far every K edits (0: only at the end)",
    )
    a(
        "--eval-n",
        type=eval_n,
        help="edits evaluated (seeded sample), 'all', or 0 for none (default 1000; 0 with "
        "--random-weights)",
    )
    a(
        "--glue",
        action="store_true",
        help="general capability (SST/MRPC/RTE/CoLA/NLI) before, at checkpoints, after",
    )
    a(
        "--hidden-shift",
        type=positive(int),
        nargs="?",
        const=1000,
        metavar="N",
        help="App. B.5: final-layer states of N unrelated prompts (default 1000) before vs after: "
        "hidden_shift.png and results.json's hidden_shift",
    )
    a(
        "--generate",
        action="store_true",
        help="also exact match of greedy answers and fluency of free "
        "generations, before and after (lab/generation.py)",
    )


def _run_flags(a):
    """Where it runs, what it writes, how it is saved and resumed."""
    a("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="torch device")
    a(
        "--dtype",
        choices=("float32", "bfloat16", "float16"),
        default="float32",
        help="model weight dtype",
    )
    a("--device-map", choices=("auto",), help="spread a large model over devices with accelerate")
    a("--seed", type=int, default=0, help="seed of the synthetic stream and the evaluation sample")
    a(
        "--no-cache",
        action="store_true",
        help="recompute the statistics-only warm-up and the pre-edit "
        "evaluation instead of reading them from the cache (lab/cache.py)",
    )
    a("--resume", action="store_true", help="continue the run in --out from its editor_state.pt")
    a(
        "--overwrite",
        action="store_true",
        help="replace the run already in --out (and an existing --save-patch "
        "file) instead of refusing",
    )
    a(
        "--save-every",
        type=save_every,
        default="auto",
        help="save editor_state.pt every N steps, every Ns seconds, "
        "or auto (default): once 19x the last save's seconds "
        "have passed, so saves take <= 5%% of the run",
    )
    a(
        "--eigh",
        choices=ROUTES,
        help="dtype of Sigma_g's eigendecomposition (default auto: float32 on an "
        f"accelerator or from width {ROUTE_WIDTH}, else float64; whitening.route)",
    )
    a(
        "--random-weights",
        action="store_true",
        help="build --model from its published config with random weights (seeded by --seed) in "
        "--dtype: cost, memory and disk of the real size, metrics that mean nothing",
    )
    a(
        "--plan",
        action="store_true",
        help="print the memory plan part by part (last line: peak <X> GB), the checkpoint's bytes and "
        "the time per edit where a stored measurement covers the model; nothing is allocated",
    )
    a(
        "--print-config",
        action="store_true",
        help="print the resolved configuration as JSON and exit",
    )


def _output_flags(a):
    """What a run writes: its folder, the edited model, the patch, the LoRA adapter."""
    a("--out", help="output folder (default runs/<timestamp>)")
    a("--save-model", help="save_pretrained the edited model to this folder")
    a(
        "--save-patch",
        help="write W_T - W_0 of the edited layers to this safetensors file (lab/patch.py)",
    )
    a(
        "--save-lora",
        help="write W_T - W_0 of the edited layers as a PEFT LoRA adapter folder (lab/lora.py)",
    )
    a(
        "--lora-rank",
        type=lora_rank,
        default="full",
        help="rank of the adapter: a number, or full (default: each layer's exact rank)",
    )
    a(
        "--apply-patch",
        help="a --save-patch file or a --save-lora folder, applied to --model and written to "
        "--save-model (a patch can also become --save-lora); no stream runs",
    )


def parse_args(argv=None):
    """The command line, every flag checked (one line and exit code 2 on a bad one)."""
    p = OneLineParser(
        description="Run a lifelong edit stream end to end (paper §4 Algorithm 1, §5 protocol)."
    )
    a = p.add_argument
    for group in (_data_flags, _method_flags, _protocol_flags, _run_flags, _output_flags):
        group(a)
    args = p.parse_args(argv)
    if (args.warmup or 0) < 0 or args.eval_every < 0 or args.skip < 0:
        p.error("--warmup, --eval-every and --skip must be >= 0")
    if args.resume and not args.out:
        p.error("--resume needs --out DIR, the folder of the run to continue")
    if args.resume and args.overwrite:
        p.error("--resume continues the run in --out, --overwrite replaces it: pass one")
    if args.lr is not None and args.step_size is not None:
        p.error("--lr and --step-size both set the step size: pass one")
    if args.apply_patch and not (args.save_model or args.save_lora):
        p.error(
            "--apply-patch needs --save-model DIR (or, for a patch file, --save-lora DIR): what to write"
        )
    try:
        outputs(args)
    except DataError as e:
        p.error(str(e))
    return args


def eigh_route(args, preset, origin):
    """--eigh, else auto resolved by the preset's width and the device (whitening.route); a model
    without a preset keeps 'auto', which the editor resolves per layer once the model is loaded."""
    if args.eigh is not None:
        origin["eigh"] = "flag"
        return args.eigh
    if "width" not in preset:
        origin["eigh"] = (
            f"auto: float32 on an accelerator or from width {ROUTE_WIDTH}, else float64, per layer"
        )
        return "auto"
    origin["eigh"] = f"default for width {preset['width']} on {args.device} (whitening.route)"
    return str(route("auto", preset["width"], args.device)).replace("torch.", "")


class Rules:
    """pick(name, flag, *rules): the flag, else the value of the first (source, value) rule that is not
    None; `origin[name]` records which rule set it."""

    def __init__(self):
        self.origin = {}

    def pick(self, name, flag, *rules):
        for source, value in (("flag", flag), *rules):
            if value is not None:
                self.origin[name] = source
                return value
        return None


# flags that pass into the configuration as they are
PLAIN = (
    "dataset",
    "data_dir",
    "encoding",
    "shuffle",
    "skip",
    "batch",
    "replicate",
    "eval_every",
    "glue",
    "generate",
    "hidden_shift",
    "seed",
    "dtype",
    "device",
    "device_map",
    "out",
    "save_model",
    "save_patch",
    "save_lora",
    "lora_rank",
    "resume",
)


def resolve(args):
    """The fully resolved configuration, every value with the rule that set it: a flag, then
    --replicate (REPLICAS), then the model's preset (lab/presets.py), then the defaults here.
    This is what --print-config prints and results.json records; nothing is loaded."""
    preset = PRESETS.get(args.model, {})
    rep = REPLICAS.get(args.replicate, {"editor": {}})
    rules = Rules()
    segs = segments(args.dataset, args.n)
    n, first = sum(k for _, k in segs), segs[0][0]  # the first segment's dataset: its Table 6 row
    if args.skip >= n:
        raise DataError(f"--skip {args.skip} leaves none of the stream's {n} edits")
    cfg = {
        "model": args.model,
        "source": preset.get("source", args.model),
        "segments": segs,
        "n": n,
    }
    cfg.update({k: getattr(args, k) for k in PLAIN})
    # a random model's metrics mean nothing: evaluation is off unless asked for
    cfg["eval_n"] = args.eval_n if args.eval_n is not None else 0 if args.random_weights else 1000
    cfg["random_weights"] = args.random_weights
    cfg.update(_method(args, preset, rep, rules, n, first))
    cfg["warmup"] = _warmup(args, rep, rules, n, segs, cfg["method"])
    # an official code's statistics, batching and floor (lab.official.OfficialEditor)
    official = {
        k: rep["editor"][k] for k in ("stats", "minibatch", "eig_floor") if k in rep["editor"]
    }
    eigh = eigh_route(args, preset, rules.origin)
    cfg["editor"] = {**official, "key_scale": not args.no_key_scale, "eigh": eigh}
    cfg["verbatim_targets"] = args.replicate is not None
    # a model spread over devices (and partly offloaded) is not hashed, nor a random one (its seed
    # makes it): no cache there
    cfg["cache"] = not (args.no_cache or args.device_map or args.random_weights)
    cfg["origin"] = rules.origin
    return cfg


def _method(args, preset, rep, rules, n, first):
    """Method, layers, lr (or step size), alpha, prior, pooling: flag, replica, preset, default."""
    pick, ed = rules.pick, rep["editor"]
    method = pick("method", args.method, ("replicate", ed.get("method")), ("default", "stableedit"))
    row = f"preset, Table 6 row {table6_row(first)}"
    layers = pick("layers", args.layers, (row, preset_layers(preset, first) if preset else None))
    if layers is None:  # read from the config; no weights are loaded
        layers = default_layers(model_skeleton(args.model))
        rules.origin["layers"] = (
            "default for a model without a preset: MLP outputs of the upper-middle third"
        )
    lr, step_size = None, args.step_size
    if preset and args.step_size is None:
        horizon = preset_lr(preset, n) != preset["lr"]
        rule = "preset"
        if horizon:
            rule = f"horizon rule: preset lr {preset['lr']:g} x {preset['lr_edits']} / {n} edits"
        lr = pick("lr", args.lr, (rule, preset_lr(preset, n)))
    elif args.step_size is None:
        lr = pick("lr", args.lr)
    if lr is None:
        rule = "default for a model without a preset: lab/presets.py STEP_SIZE, horizon rule"
        step_size = pick("step_size", args.step_size, (rule, default_step_size(n)))
        rules.origin["lr"] = "set at the first step by the step size"
    return {
        "method": method,
        "layers": layers,
        "lr": lr,
        "step_size": step_size,
        "alpha": pick(
            "alpha",
            args.alpha,
            ("replicate", ed.get("alpha")),
            ("preset", preset.get("alpha")),
            ("default", 10.0),
        ),
        "prior": pick("prior", args.prior, ("default", 1.0)),
        "pooled": pick("pooled", args.pooled, ("replicate", ed.get("pooled")), ("default", False)),
    }


def _warmup(args, rep, rules, n, segs, method):
    """Algorithm 1's warm-up: how many, how (stats, applied, paper), from which data, where."""
    pick, first = rules.pick, segs[0][0]
    no_stats = method in ("no_ln", "ft")  # a warm-up feeds statistics these methods do not keep
    paper = "paper" if args.model in PAPER_MODELS else None
    mode = pick(
        "warmup_mode",
        args.warmup_mode,
        ("replicate", rep.get("warmup_mode")),
        ("preset", paper),
        ("default", "stats"),
    )
    n_warm = pick(
        "warmup",
        args.warmup,
        ("replicate", rep.get("warmup")),
        ("default for methods without statistics", 0 if no_stats else None),
        ("preset", preset_warmup(args.model, n)),
    )
    in_domain = IN_DOMAIN.get(first, first) if mode == "paper" else None
    data = pick(
        "warmup_data",
        args.warmup_data,
        ("in-domain (Algorithm 1)", in_domain),
        ("default", "synthetic"),
    )
    return {
        "n": n_warm,
        "mode": mode,
        "data": data,
        "offset": used(segs, data),
        "placement": args.warmup_placement,
    }


if __name__ == "__main__":
    for argv in (
        ["--model", "gpt-j", "--dataset", "fever", "--n", "20000"],
        ["--dataset", "zsre:1000,medcf:300"],
    ):
        cfg = resolve(parse_args(argv))
        print(
            " ".join(argv)
            + f": {len(cfg['layers'])} layers ({cfg['origin']['layers']}), lr {cfg['lr']:g} "
            f"({cfg['origin']['lr']}), warm-up {cfg['warmup']['n']} {cfg['warmup']['mode']} ({cfg['origin']['warmup']})"
        )
