"""Calibration sweep on the ZsRE calibration split (issue 8), one process for many settings.

Each setting is exactly `python run_stream.py --dataset zsre-calib --n 300 --eval-n all ...`
(3 steps of 100 edits, all 300 evaluated, retain against the pre-edit model); this loop only
shares the model load and the pre-edit pass between settings. Usage, from the repo root:

    python results/sweep.py '{"lr": 3e-4}' '{"lr": 5e-4, "alpha": 1}' '{"lr": 3e-4, "pooled": true}'

keys: lr, alpha (10), prior (1), method (stableedit), pooled (false), layers (18..25),
warmup (0), wdata ("zsre-calib": its records 300.., as run_stream does; or "synthetic"), stats_only (false).
"""
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from data import load                                      # noqa: E402
from editor import Editor, load_model                      # noqa: E402
from evaluate import edit_metrics, locality_tokens         # noqa: E402

model, tok, preset = load_model("smollm2-135m")
reqs = load("zsre-calib", 300)
named = dict(model.named_modules())
W0 = {n: m.weight.detach().clone() for n, m in named.items() if n.endswith("down_proj")}
ref = locality_tokens(model, tok, reqs)
for cfg in map(json.loads, sys.argv[1:]):
    with torch.no_grad():
        for n, W in W0.items():
            named[n].weight.copy_(W)
    layers = [f"model.layers.{i}.mlp.down_proj" for i in cfg.get("layers", range(18, 26))]
    ed = Editor(model, tok, layers, cfg.get("method", "stableedit"), cfg["lr"], cfg.get("alpha", 10.0),
                prior=cfg.get("prior", 1.0), pooled=cfg.get("pooled", False))
    if cfg.get("warmup"):
        wdata = cfg.get("wdata", "zsre-calib")
        warm = load(wdata, cfg["warmup"], offset=300 if wdata == "zsre-calib" else 0)
        ed.warmup(warm, apply=not cfg.get("stats_only", False))
    reps = [ed.edit(reqs[i:i + 100]) for i in range(0, 300, 100)]
    m = edit_metrics(model, tok, reqs, reference=ref, progress=False)
    norm = sum(L["delta_norm"] for r in reps for L in r["layers"].values()) / (3 * len(layers))
    print(f"| `{json.dumps(cfg)}` | {m['efficacy']:.1f} | {m['generalization']:.1f} | {m['specificity']:.1f} "
          f"| {m['retain']:.1f} | {norm:.3g} |", flush=True)
