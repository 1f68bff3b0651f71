"""Calibration sweep on the ZsRE calibration split (issue 8), one process for many settings.

Each setting is exactly `python run_stream.py --model M --dataset zsre-calib --n 300 --eval-n all ...`
(3 steps of 100 edits, all 300 evaluated, retain against the pre-edit model); this loop only
shares the model load and the pre-edit pass between settings. Usage, from the repo root:

    python results/sweep.py '{"lr": 3e-4}' '{"lr": 5e-4, "alpha": 1}' '{"warmup": 0, "pooled": true}'
    python results/sweep.py --model gemma3-270m '{"lr": 5e-6, "layers": [10, 11, 12, 13, 14, 15]}'

A setting overrides run_stream.py's defaults: lr, alpha (preset), prior (1), method (stableedit),
pooled (false), layers (preset; indices of the same module type), warmup (2000), wdata
("synthetic"; "zsre-calib" means its records 300.. as run_stream does), apply_warmup (false).
"""
import json
import re
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from data import load                                      # noqa: E402
from editor import Editor, load_model                      # noqa: E402
from evaluate import edit_metrics, locality_tokens         # noqa: E402

args, name = sys.argv[1:], "smollm2-135m"
if args[:1] == ["--model"]:
    name, args = args[1], args[2:]
model, tok, preset = load_model(name)
reqs = load("zsre-calib", 300)
named = dict(model.named_modules())
W0 = {n: named[n].weight.detach().clone() for n in named if n.endswith(preset["layers"][0].split(".")[-1])}
ref = locality_tokens(model, tok, reqs)
m = edit_metrics(model, tok, reqs, reference=ref, progress=False)
print(f"| pre-edit ({name}) | {m['efficacy']:.1f} | {m['generalization']:.1f} | {m['specificity']:.1f} | 100 | – |",
      flush=True)
for given in map(json.loads, args):
    cfg = {"lr": preset["lr"], "alpha": preset["alpha"], "warmup": 2000, "wdata": "synthetic", **given}
    with torch.no_grad():
        for n, W in W0.items():
            named[n].weight.copy_(W)
    layers = [re.sub(r"\.\d+\.", f".{i}.", preset["layers"][0]) for i in cfg["layers"]] if "layers" in cfg \
        else preset["layers"]
    ed = Editor(model, tok, layers, cfg.get("method", "stableedit"), cfg["lr"], cfg["alpha"],
                prior=cfg.get("prior", 1.0), pooled=cfg.get("pooled", False))
    if cfg["warmup"]:
        warm = load(cfg["wdata"], cfg["warmup"], offset=300 if cfg["wdata"] == "zsre-calib" else 0)
        ed.warmup(warm, apply=cfg.get("apply_warmup", False))
    reps = [ed.edit(reqs[i:i + 100]) for i in range(0, 300, 100)]
    m = edit_metrics(model, tok, reqs, reference=ref, progress=False)
    norm = sum(L["delta_norm"] for r in reps for L in r["layers"].values()) / (3 * len(layers))
    print(f"| `{json.dumps(given)}` | {m['efficacy']:.1f} | {m['generalization']:.1f} | {m['specificity']:.1f} "
          f"| {m['retain']:.1f} | {norm:.3g} |", flush=True)
