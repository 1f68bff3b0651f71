"""Calibration sweep on the ZsRE calibration split (issue 8), one process for many settings.

Each setting is exactly `python run_stream.py --model M --dataset zsre-calib --n 300 --eval-n all ...`
(3 steps of 100 edits, all 300 evaluated, retain against the pre-edit model); this loop only
shares the model load and the pre-edit pass between settings. Usage, from the repo root:

    python results/sweep.py '{"lr": 3e-4}' '{"lr": 5e-4, "alpha": 1}' '{"warmup": 0, "pooled": true}'
    python results/sweep.py --model gemma3-270m '{"lr": 5e-6, "layers": [10, 11, 12, 13, 14, 15]}'
    python results/sweep.py '{"replicate": "ultraedit-official", "lr": 3e-4, "minibatch": null}'

A setting overrides run_stream.py's defaults: lr, alpha (preset), prior (1), method (stableedit),
pooled (false), layers (preset; indices of the same module type), warmup (2000), wdata
("synthetic"; "zsre-calib" means its records 300.. as run_stream does), wmode ("stats", "applied"
or "paper"), replicate (an official.REPLICAS name: its editor settings, warm-up mode and verbatim
targets), and the Editor's stats / minibatch / eig_floor / verbatim on top of a replica.
"""
import json
import re
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from data import load                                      # noqa: E402
from editor import Editor                                  # noqa: E402
from evaluate import edit_metrics, locality_tokens         # noqa: E402
from models import load_model, preset_layers               # noqa: E402
from official import REPLICAS, verbatim                    # noqa: E402

args, name = sys.argv[1:], "smollm2-135m"
if args[:1] == ["--model"]:
    name, args = args[1], args[2:]
model, tok, preset = load_model(name)
base_layers = preset_layers(preset, "zsre")
raw = load("zsre-calib", 300)
named = dict(model.named_modules())
W0 = {n: named[n].weight.detach().clone() for n in named if n.endswith(base_layers[0].split(".")[-1])}
pre = {}                                                   # verbatim or not -> (requests, reference)
for verb in (False, True):
    reqs = verbatim(raw) if verb else raw
    ref = locality_tokens(model, tok, reqs)
    m = edit_metrics(model, tok, reqs, reference=ref, progress=False)
    pre[verb] = (reqs, ref)
    print(f"| pre-edit ({name}{', verbatim targets' if verb else ''}) | {m['efficacy']:.1f} | "
          f"{m['generalization']:.1f} | {m['specificity']:.1f} | 100 | – |", flush=True)
for given in map(json.loads, args):
    rep = REPLICAS.get(given.get("replicate"), {"editor": {}})
    wmode = given.get("wmode", rep.get("warmup_mode", "stats"))
    cfg = {"lr": preset["lr"], "alpha": preset["alpha"], "warmup": rep.get("warmup", 2000),
           "wdata": "zsre-calib" if wmode == "paper" else "synthetic", "wmode": wmode,
           "verbatim": "replicate" in given, **rep["editor"], **given}
    with torch.no_grad():
        for n, W in W0.items():
            named[n].weight.copy_(W)
    layers = [re.sub(r"\.\d+\.", f".{i}.", base_layers[0]) for i in cfg["layers"]] if "layers" in cfg \
        else base_layers
    ed = Editor(model, tok, layers, cfg.get("method", "stableedit"), cfg["lr"], cfg["alpha"],
                prior=cfg.get("prior", 1.0), pooled=cfg.get("pooled", False), stats=cfg.get("stats", "niw"),
                minibatch=cfg.get("minibatch"), eig_floor=cfg.get("eig_floor", "relative"))
    reqs, ref = pre[cfg["verbatim"]]
    if cfg["warmup"]:
        warm = load(cfg["wdata"], cfg["warmup"], offset=300 if cfg["wdata"] == "zsre-calib" else 0)
        ed.warmup(verbatim(warm) if cfg["verbatim"] else warm, apply=cfg["wmode"] != "stats",
                  diagonal=cfg["wmode"] == "paper")
    reps = [ed.edit(reqs[i:i + 100]) for i in range(0, 300, 100)]
    m = edit_metrics(model, tok, reqs, reference=ref, progress=False)
    norm = sum(L["delta_norm"] for r in reps for L in r["layers"].values()) / (3 * len(layers))
    print(f"| `{json.dumps(given)}` | {m['efficacy']:.1f} | {m['generalization']:.1f} | {m['specificity']:.1f} "
          f"| {m['retain']:.1f} | {norm:.3g} |", flush=True)
