"""Calibration sweep on the ZsRE calibration split (issue 8), one process for many settings.

Each setting is exactly `python run_stream.py --model M --dataset zsre-calib --n 300 --eval-n all ...`
(3 steps of 100 edits, all 300 evaluated, retain against the pre-edit model); this loop only
shares the model load and the pre-edit pass between settings. Usage, from the repo root:

    python results/sweep.py '{"lr": 3e-4}' '{"lr": 5e-4, "alpha": 1}' '{"warmup": 0, "pooled": true}'
    python results/sweep.py --model gemma3-270m '{"lr": 5e-6, "layers": [10, 11, 12, 13, 14, 15]}'
    python results/sweep.py '{"replicate": "ultraedit-official", "lr": 3e-4, "minibatch": null}'

A setting is run_stream.py's flags (resolved by the same run_settings.resolve): lr, alpha (preset), prior (1), method (stableedit),
pooled (false), layers (preset; indices of the same module type), warmup (2000), wdata
("synthetic"; "zsre-calib" means its records 300.. as run_stream does), wmode ("stats", "applied"
or "paper"), replicate (a run_settings.REPLICAS name: its editor settings, warm-up mode and verbatim
targets), and the Editor's stats / minibatch / eig_floor / verbatim on top of a replica.
"""

import json
import re
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from data import load  # noqa: E402
from data_stream import load_stream, plan, warmup_step  # noqa: E402
from editor_official import verbatim  # noqa: E402
from evaluate import edit_metrics, locality_tokens  # noqa: E402
from run_models import load_model, preset_layers  # noqa: E402
from run_phases import make_editor  # noqa: E402
from run_settings import parse_args, resolve  # noqa: E402

# a setting's keys -> run_stream.py flags (layers: indices of the preset's module type)
FLAGS = {
    "lr": "--lr",
    "alpha": "--alpha",
    "prior": "--prior",
    "method": "--method",
    "warmup": "--warmup",
    "wdata": "--warmup-data",
    "wmode": "--warmup-mode",
    "replicate": "--replicate",
}


def config(given):
    """run_stream.py's resolved configuration of a setting (the same rules, run_settings.resolve), with
    an official code's stats / minibatch / eig_floor / verbatim set on top where the setting says."""
    argv = ["--model", name, "--dataset", "zsre-calib", "--n", "300", "--eval-n", "all"]
    argv += [a for k, flag in FLAGS.items() if k in given for a in (flag, str(given[k]))]
    argv += ["--pooled"] * bool(given.get("pooled"))
    if "layers" in given:
        argv += [
            "--layers",
            *(re.sub(r"\.\d+\.", f".{i}.", base_layers[0]) for i in given["layers"]),
        ]
    cfg = resolve(parse_args(argv))
    cfg["editor"].update({k: given[k] for k in ("stats", "minibatch", "eig_floor") if k in given})
    cfg["verbatim_targets"] = given.get("verbatim", cfg["verbatim_targets"])
    return cfg


args, name = sys.argv[1:], "smollm2-135m"
if args[:1] == ["--model"]:
    name, args = args[1], args[2:]
model, tok, preset = load_model(name)
base_layers = preset_layers(preset, "zsre")
raw = load("zsre-calib", 300)
named = dict(model.named_modules())
W0 = {
    n: named[n].weight.detach().clone() for n in named if n.endswith(base_layers[0].split(".")[-1])
}
pre = {}  # verbatim or not -> (requests, reference)
for verb in (False, True):
    reqs = verbatim(raw) if verb else raw
    ref = locality_tokens(model, tok, reqs)
    m = edit_metrics(model, tok, reqs, reference=ref, progress=False)
    pre[verb] = (reqs, ref)
    print(
        f"| pre-edit ({name}{', verbatim targets' if verb else ''}) | {m['efficacy']:.1f} | "
        f"{m['generalization']:.1f} | {m['specificity']:.1f} | 100 | – |",
        flush=True,
    )
for given in map(json.loads, args):
    cfg = config(given)
    with torch.no_grad():
        for n, W in W0.items():
            named[n].weight.copy_(W)
    ed = make_editor(model, tok, cfg)
    reqs, ref = pre[cfg["verbatim_targets"]]
    _, _, warm = load_stream(cfg)
    warm = verbatim(warm) if cfg["verbatim_targets"] else warm
    reps = []
    for kind, lo, hi in plan(cfg, len(warm)):  # warm-up steps where run_stream.py puts them
        apply, diagonal = warmup_step(cfg["warmup"]["mode"]) if kind == "warmup" else (True, False)
        rep = ed.edit((warm if kind == "warmup" else reqs)[lo:hi], apply=apply, diagonal=diagonal)
        reps += [rep] if kind == "edit" else []
    m = edit_metrics(model, tok, reqs, reference=ref, progress=False)
    norm = sum(L["delta_norm"] for r in reps for L in r["layers"].values()) / (
        3 * len(cfg["layers"])
    )
    print(
        f"| `{json.dumps(given)}` | {m['efficacy']:.1f} | {m['generalization']:.1f} | {m['specificity']:.1f} "
        f"| {m['retain']:.1f} | {norm:.3g} |",
        flush=True,
    )
