"""At the paper's size: the editor measured at the width of the paper's 7-8B models, and projected to them.

The paper edits GPT-J-6B (fc_out, 4096 x 16384), Llama-3-8B and Mistral-7B (down_proj, 4096 x 14336)
and Qwen2.5-7B (3584 x 18944). Their published configs (lab.presets.PAPER_CONFIGS) build them with random
weights: timing, memory and disk do not depend on the values. On this CPU each is cut to 2 blocks and
both blocks' MLP outputs are edited with 100 synthetic edits per step; what is measured, per model:

  fb1, fbD   the editor's forward+backward (capture.py) with the edited layer in block 0, at depth 1 and D = 2
  f1, fD     the same forward alone (no graph): f = fD - f1 is one block's forward, b = fbD - fb1 - f its backward
  phases     stats / normalize / solve / apply seconds per edited layer and method (Editor.update on one
             capture, Sigma_g seeded with a spectrum measured on SmolLM2/Gemma stretched to the width,
             results/spectra.json: an eigh's speed depends on its spectrum), run_stream's per-step drift
  state      resident bytes of the editor's state per layer, against the float64 Sigma_g it must keep
  save       bytes and seconds of one checkpoint (state + edited weights, written and fsynced)

Projected from those (and said so): the full model with Table 6's ZsRE layers, L blocks, lowest edited
block l: forward+backward = fb1 + (L-1) f + (L-1-l) b; per edit (forward+backward + sum of the layers'
phases) / 100 for both methods and their ratio; peak memory; saves and bytes of a 20,000-edit run under
--save-every auto. The projection is validated against the whole SmolLM2-135M measured here.

This file is the command line and the tables; the work is in width_measure.py (the timed runs on the
cut, the float32/float64 eigh routes), width_plan.py (the projection's arithmetic), width_sigma.py
(Sigma_g at the width) and width_whole.py (the whole models: the validation and --full).

    python results/width.py                         # this CPU, ~12 min: results/width.json, width.csv
    python results/width.py --models gpt-j           # some of the models
    python results/width.py --device cuda --full     # on a GPU: the whole models in bf16 (results/width_gpu.json)
    python results/width.py --tiny --full --out /tmp/w.json   # the GPU path at tiny width, on the CPU
"""

import argparse
import csv
import json
import os
import sys
from pathlib import Path

import torch
from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from lab.models import load_model  # noqa: E402
from lab.presets import PAPER_CONFIGS, PAPER_MODELS, PRESETS, preset_layers  # noqa: E402
from width_measure import measure_cut, whitening_routes  # noqa: E402
from width_plan import project, tiny_config  # noqa: E402
from width_whole import full_run, validate  # noqa: E402


def table(res):
    """The per-layer table and the projections, as printed and as the README cites them."""
    lines = [
        "| model | d_out x d_in | fwd+bwd per block | method | stats | normalize | solve | apply | "
        "state / float64 Sigma_g | checkpoint per layer |",
        "|---" * 10 + "|",
    ]
    for m in res["cut"]:
        for label in ("stableedit", "ultraedit", "stableedit_float64"):
            if label in m:
                p = m[label]
                lines.append(
                    f"| {m['model']} | {m['d_out']} x {m['d_in']} | {m['f'] + m['b']:.2f} s | {label} | "
                    + " | ".join(f"{p[k]:.2f} s" for k in ("stats", "normalize", "solve", "apply"))
                    + f" | {p['state_bytes'] / 1e6:.0f} MB ({p['state_over_sigma']:.2f}x) | "
                    f"{p['save_bytes'] / 1e6:.0f} MB, {p['save_seconds'] / 2:.2f} s |"
                )
    lines += [
        "",
        "| model (Table 6 ZsRE layers) | s/edit stableedit | s/edit ultraedit | ratio | 20K-edit run | "
        "peak memory fp32 / bf16 | saves (auto) | written | share of wall |",
        "|---" * 9 + "|",
    ]
    for name, p in res["projection"].items():
        se, mem = p["stableedit"], p["memory"]
        lines.append(
            f"| {name} ({p['edited_layers']} layers) | {se['s_per_edit']:.2f} | "
            f"{p['ultraedit']['s_per_edit']:.2f} | {p['ratio']:.2f} | {se['run_hours']:.1f} h | "
            f"{mem['peak_device'] / 1e9:.1f} / {p['bf16_peak_device'] / 1e9:.1f} GB | "
            f"{se['saves']} (every {se['save_every_steps']}) | {se['bytes_written'] / 1e9:.0f} GB | "
            f"{100 * se['save_share']:.1f} % |"
        )
    return "\n".join(lines)


def routes_table(res):
    lines = [
        "| Sigma_g spectrum (SmolLM2/Gemma layer, stretched to 4096) | cond | eigh float64 | eigh float32 | "
        "whitened g, relative error | worst row | cond's relative error |",
        "|---" * 7 + "|",
    ]
    for r in res.get("routes", []):
        lines.append(
            f"| {r['spectrum']} cond | {r['cond']:.3g} | {r['eigh_float64_s']:.2f} s | {r['eigh_float32_s']:.2f} s | "
            f"{r['whitened_rel_err']:.1e} | {r['row_rel_err_max']:.1e} | {r['cond_rel_err']:.1e} |"
        )
    v = res.get("validation")
    if v:
        lines += [
            "",
            "| whole SmolLM2-135M, s/edit | measured | projected from 2 blocks | projected / measured |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {k} | {v['measured_s_per_edit'][k]:.4f} | {v['projected_s_per_edit'][k]:.4f} | "
            f"{v['projected_over_measured'][k]:.2f} |"
            for k in v["measured_s_per_edit"]
        ]
    return "\n".join(lines)


def projections(res, configs):
    """res["projection"]: each cut projected to its whole model (width_plan.project), in fp32, its
    bf16 peak memory, and GPT-J's ratio with the float64 eigh; the write speed is the cuts' own."""
    write_bps = sum(m["stableedit"]["save_bytes"] * 2 for m in res["cut"]) / sum(
        m["stableedit"]["save_seconds"] for m in res["cut"]
    )
    res["write_bytes_per_s"] = write_bps
    for m in res["cut"]:
        layers = preset_layers(PRESETS[m["model"]], "zsre")
        p = project(m, configs[m["model"]], layers, write_bps)
        p["bf16_peak_device"] = project(m, configs[m["model"]], layers, write_bps, weight_bytes=2)[
            "memory"
        ]["peak_device"]
        if "stableedit_float64" in m:
            p["ratio_float64_eigh"] = project(
                {**m, "stableedit": m["stableedit_float64"]}, configs[m["model"]], layers, write_bps
            )["ratio"]
        res["projection"][m["model"]] = p


def cpu_main(args, tok, configs):
    res = {
        "machine": {
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "cut": [],
        "projection": {},
    }
    base = [("stableedit", "stableedit", "auto"), ("ultraedit", "ultraedit", "auto")]
    for name in tqdm(args.models, desc="width", unit="model"):
        routes = base + [("stableedit_float64", "stableedit", "float64")] * (
            name == "gpt-j" and not args.tiny
        )
        res["cut"].append(
            measure_cut(
                name, configs[name], tok, "cpu", torch.float32, routes, args.steps, args.reps
            )
        )
    projections(res, configs)
    if not args.no_routes:
        res["routes"] = whitening_routes(64 if args.tiny else 4096)
    if not args.no_validate:
        res["validation"] = validate(tok, max(args.reps, 4))
    return res


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    a = ap.add_argument
    a(
        "--models",
        nargs="+",
        choices=PAPER_MODELS,
        help="default: all four (CPU), gpt-j and llama3-8b (--full)",
    )
    a("--device", default="cpu")
    a("--full", action="store_true", help="the whole models in bf16 (a GPU's memory)")
    a("--tiny", action="store_true", help="the configs at width 64 (tests the paths on a CPU)")
    a("--steps", type=int, default=3, help="update steps per method (the first is not averaged)")
    a("--reps", type=int, default=2, help="timed repeats of each forward(+backward)")
    a("--no-routes", action="store_true", help="skip the float32/float64 eigh comparison")
    a("--no-validate", action="store_true", help="skip the whole-SmolLM2 validation")
    a("--out", help="JSON path (default results/width.json, results/width_gpu.json with --full)")
    a("--table", action="store_true", help="print the tables from the stored JSON and exit")
    a(
        "--tokenizer",
        help="a tokenizer folder (default SmolLM2's, from its package): a GPU box without "
        "the package gets the folder carried",
    )
    return ap.parse_args(argv)


def gpu_main(args, tok, configs):
    """--full: the whole models in bf16, and the depth-cut projection of the same models beside."""
    res = {
        "full": [
            full_run(n, configs[n], tok, args.device, torch.bfloat16, args.steps)
            for n in args.models
        ]
    }
    if torch.device(args.device).type == "cuda":
        res["gpu"] = torch.cuda.get_device_name()
    methods = [("stableedit", "stableedit", "auto"), ("ultraedit", "ultraedit", "auto")]
    for r in res["full"]:
        m = measure_cut(
            r["model"],
            configs[r["model"]],
            tok,
            args.device,
            torch.bfloat16,
            methods,
            args.steps,
            args.reps,
        )
        layers = preset_layers(PRESETS[r["model"]], "zsre")
        r["projected"] = project(m, configs[r["model"]], layers, 1e12, weight_bytes=2)
    return res


CSV = (
    "model",
    "edited_layers",
    "s_per_edit_stableedit",
    "s_per_edit_ultraedit",
    "ratio",
    "state_over_sigma",
    "peak_fp32_bytes",
    "peak_bf16_bytes",
    "bytes_written_20k",
    "save_share",
)


def write_csv(path, res):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV)
        for m in res["cut"]:
            p = res["projection"][m["model"]]
            w.writerow(
                [
                    m["model"],
                    p["edited_layers"],
                    p["stableedit"]["s_per_edit"],
                    p["ultraedit"]["s_per_edit"],
                    p["ratio"],
                    m["stableedit"]["state_over_sigma"],
                    p["memory"]["peak_device"],
                    p["bf16_peak_device"],
                    p["stableedit"]["bytes_written"],
                    p["stableedit"]["save_share"],
                ]
            )


def main(argv=None):
    args = parse_args(argv)
    out = Path(
        args.out or Path(__file__).with_name("width_gpu.json" if args.full else "width.json")
    )
    if args.table:
        res = json.loads(out.read_text())
        print(table(res) + "\n\n" + routes_table(res))
        return
    if not out.resolve().parent.is_dir():
        sys.exit(f"width.py: error: the folder of --out {out} does not exist")
    args.models = args.models or (["gpt-j", "llama3-8b"] if args.full else list(PAPER_MODELS))
    if args.tokenizer:  # any tokenizer at hand: the vocabulary follows it
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(args.tokenizer)
    else:
        _, tok, _ = load_model("smollm2-135m")
    configs = {k: tiny_config(v) if args.tiny else v for k, v in PAPER_CONFIGS.items()}
    if args.full:
        res = gpu_main(args, tok, configs)
        print(json.dumps(res, indent=1))
    else:
        res = cpu_main(args, tok, configs)
        print(table(res) + "\n\n" + routes_table(res))
        write_csv(out.with_suffix(".csv"), res)
    out.write_text(json.dumps(res, indent=1))
    print(f"written {out}")


if __name__ == "__main__":
    main()
