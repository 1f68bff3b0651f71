"""Calibration sweep on the ZsRE calibration split, one process for many settings.

Each setting is exactly `python run_stream.py --model M --dataset zsre-calib --n 300 --eval-n all ...`
(3 steps of 100 edits, all 300 evaluated, retain against the pre-edit model); this loop only
shares the model load and the pre-edit pass between settings. Usage, from the repo root:

    python results/sweep.py '{"lr": 3e-4}' '{"lr": 5e-4, "alpha": 1}' '{"warmup": 0, "pooled": true}'
    python results/sweep.py --model gemma3-270m '{"lr": 5e-6, "layers": [10, 11, 12, 13, 14, 15]}'
    python results/sweep.py --table official '{"replicate": "ultraedit-official", "lr": 3e-4}'

Each row (the pre-edit ones too) is printed as a table row and appended to results/calibration.json:
{"model", "table" (--table: which sweep), "stage" ("pre" or "post"), "setting", "efficacy",
"generalization", "specificity", "retain", "update_norm" (mean ‖Δ‖_F per step and layer), "source"
(the date)}; results/calibration.md is generated from that file (results/pages.py).

A setting is run_stream.py's flags (resolved by the same lab.settings.resolve): lr, alpha (preset), prior (1), method (stableedit),
pooled (false), layers (preset; indices of the same module type), warmup (2000), wdata
("synthetic"; "zsre-calib" means its records 300.. as run_stream does), wmode ("stats", "applied"
or "paper"), replicate (a lab.settings.REPLICAS name: its editor settings, warm-up mode and verbatim
targets), and the Editor's stats / minibatch / eig_floor / verbatim on top of a replica.
"""

import argparse
import json
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from data import load  # noqa: E402
from evaluate import edit_metrics, locality_tokens  # noqa: E402
from lab.models import load_model  # noqa: E402
from lab.official import verbatim  # noqa: E402
from lab.phases import make_editor  # noqa: E402
from lab.presets import preset_layers  # noqa: E402
from lab.settings import parse_args, resolve  # noqa: E402
from lab.stream import load_stream, plan, warmup_step  # noqa: E402

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


def config(given, name, base_layers):
    """run_stream.py's resolved configuration of a setting (the same rules, lab.settings.resolve), with
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


STORE = Path(__file__).resolve().parent / "calibration.json"


def store(m):
    """Print a sweep row as a table row and append it to results/calibration.json (a rerun of a
    setting appends a new row; the pages read the latest one of each setting)."""
    label = f"pre-edit ({m['model']}{', verbatim targets' if m['setting'] else ''})"
    label = label if m["stage"] == "pre" else f"`{json.dumps(m['setting'])}`"
    norm = f"{m['update_norm']:.3g}" if "update_norm" in m else "–"
    print(
        f"| {label} | {m['efficacy']:.1f} | {m['generalization']:.1f} | {m['specificity']:.1f} "
        f"| {m['retain']:.1f} | {norm} |",
        flush=True,
    )
    rows = json.loads(STORE.read_text("utf-8")) if STORE.exists() else []
    rows.append({**m, "source": f"sweep.py, {datetime.now(timezone.utc):%Y-%m-%d}"})
    STORE.write_text(
        "[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n]\n", "utf-8"
    )


def result(opts, given, stage, m, norm=None):
    """A calibration.json row: this sweep's model and table (opts), the setting, the four metrics."""
    keys = ("efficacy", "generalization", "specificity", "retain")
    row = dict(
        model=opts.model,
        table=opts.table,
        stage=stage,
        setting=given,
        **{k: float(m[k]) for k in keys},
    )
    return {**row, "update_norm": float(norm)} if norm is not None else row


def parse(argv=None):
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--model", default="smollm2-135m")
    cli.add_argument(
        "--table", default="sweep", help="which sweep the rows belong to (calibration.json)"
    )
    cli.add_argument("settings", nargs="*", help="JSON objects of run_stream.py flags")
    return cli.parse_args(argv)


def pre_edit(model, tok, raw, opts):
    """{verbatim targets?: (requests, locality reference)}, each pre-edit row stored."""
    pre = {}
    for verb in (False, True):
        reqs = verbatim(raw) if verb else raw
        ref = locality_tokens(model, tok, reqs)
        m = edit_metrics(model, tok, reqs, reference=ref, progress=False)
        pre[verb] = (reqs, ref)
        store(result(opts, {"verbatim": True} if verb else {}, "pre", {**m, "retain": 100.0}))
    return pre


def run_setting(model, tok, cfg, reqs):
    """The setting's stream on the model: warm-up steps where run_stream.py puts them, then the 3 edit
    steps; the mean |Delta|_F per step and layer."""
    ed = make_editor(model, tok, cfg)
    _, _, warm = load_stream(cfg)
    warm = verbatim(warm) if cfg["verbatim_targets"] else warm
    reps = []
    for kind, lo, hi in plan(cfg, len(warm)):  # warm-up steps where run_stream.py puts them
        step = warmup_step(cfg["warmup"]["mode"]) if kind == "warmup" else {"apply": True}
        rep = ed.edit((warm if kind == "warmup" else reqs)[lo:hi], **step)
        reps += [rep] if kind == "edit" else []
    return sum(L["delta_norm"] for r in reps for L in r["layers"].values()) / (
        3 * len(cfg["layers"])
    )


def main(argv=None):
    opts = parse(argv)
    model, tok, preset = load_model(opts.model)
    base_layers = preset_layers(preset, "zsre")
    named = dict(model.named_modules())
    W0 = {
        n: named[n].weight.detach().clone()
        for n in named
        if n.endswith(base_layers[0].split(".")[-1])
    }
    pre = pre_edit(model, tok, load("zsre-calib", 300), opts)  # verbatim or not -> (requests, ref)
    for given in map(json.loads, opts.settings):
        cfg = config(given, opts.model, base_layers)
        with torch.no_grad():
            for n, W in W0.items():
                named[n].weight.copy_(W)
        reqs, ref = pre[cfg["verbatim_targets"]]
        norm = run_setting(model, tok, cfg, reqs)
        m = edit_metrics(model, tok, reqs, reference=ref, progress=False)
        store(result(opts, given, "post", m, norm))


if __name__ == "__main__":
    main()
