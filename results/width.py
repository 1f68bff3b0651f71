"""At the paper's size: the editor measured at the width of the paper's 7-8B models, and projected to them.

The paper edits GPT-J-6B (fc_out, 4096 x 16384), Llama-3-8B and Mistral-7B (down_proj, 4096 x 14336)
and Qwen2.5-7B (3584 x 18944). Their published configs (models.PAPER_CONFIGS) build them with random
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

    python results/width.py                         # this CPU, ~12 min: results/width.json, width.csv
    python results/width.py --models gpt-j           # some of the models
    python results/width.py --device cuda --full     # on a GPU: the whole models in bf16 (results/width_gpu.json)
    python results/width.py --tiny --full --out /tmp/w.json   # the GPU path at tiny width, on the CPU
"""

import argparse
import csv
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from capture import answer_logits  # noqa: E402
from data import load  # noqa: E402
from editor import Editor  # noqa: E402
from lab.models import (  # noqa: E402
    PAPER_CONFIGS,
    PAPER_MODELS,
    PRESETS,
    blocks,
    load_model,
    mlp_output,
    preset_layers,  # noqa: E402
    random_model,
)
from lab.phases import drift_norm  # noqa: E402
from whitening import eigen, zca  # noqa: E402

EDITS, RUN_EDITS, WARMUP = 100, 20_000, 2_000  # per step; the headline run; Algorithm 1's warm-up
SPECTRA = Path(__file__).with_name("spectra.json")


def clock(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


def spectrum(d, which="median"):
    """Eigenvalues / lambda_max of a measured Sigma_g (results/spectra.json) stretched to d: log-linear in
    the quantile, so lambda_max / lambda_min is kept. which: the layer of median, min or max cond."""
    layers = sorted(
        (v for m in json.loads(SPECTRA.read_text()).values() for v in m.values()),
        key=lambda v: v["cond"],
    )
    v = {"min": layers[0], "median": layers[len(layers) // 2], "max": layers[-1]}[which]
    rel = torch.tensor(v["relative"], dtype=torch.float64).clamp_min(1.0 / v["cond"])
    q = torch.linspace(0, 1, d, dtype=torch.float64) * (len(rel) - 1)
    lo = q.floor().long().clamp(max=len(rel) - 2)
    t = q - lo
    return torch.exp((1 - t) * rel[lo].log() + t * rel[lo + 1].log())  # (d,) ascending


def covariance(lam, seed=0, device="cpu"):
    """U diag(lam) U^T with a random orthogonal U, float64."""
    g = torch.Generator().manual_seed(seed)
    U, _ = torch.linalg.qr(torch.randn(len(lam), len(lam), generator=g, dtype=torch.float64))
    return ((U * lam) @ U.T).to(device)


def seed_statistics(ed, cap, Sigma, rows=7000):
    """Each tracker as after `rows` vectors: key statistics from the capture, Sigma_g = Sigma scaled to the
    captured g. A statistics-only warm-up would need d_out / (answer tokens per step) steps for a
    full-rank Sigma_g (35+ at 4096); before that the prior's isotropic part deflates the eigh."""
    for n, (K, G) in cap.items():
        sk, sg = ed.stats[n]
        for t, x in ((sk, K), (sg, G)):
            t.n, t.kappa, t.nu, t.s0 = rows, t.kappa0 + rows, t.nu0 + rows, 1.0
            t.m = x.double().mean(0)
        sk.Psi = (sk.nu - 2) * K.double().var(0).clamp_min(1e-12)
        if sg.full:
            sg.Psi = (
                (sg.nu - sg.dim - 1) * Sigma * (G.double().var(0).mean() / Sigma.diagonal().mean())
            )
        else:
            sg.Psi = (sg.nu - 2) * G.double().var(0).clamp_min(1e-30)


def timed(fn, device, reps):
    """The fastest of reps calls of fn() (after one untimed call on a GPU: kernels load lazily)."""
    if torch.device(device).type == "cuda":
        fn()
    out = []
    for _ in range(reps):
        t0 = clock(device)
        fn()
        out.append(clock(device) - t0)
    return min(out)


def tensor_bytes(obj):
    if torch.is_tensor(obj):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(v) for v in obj)
    return 0


def checkpoint(ed, folder):
    """(bytes, seconds) of one checkpoint as run_stream writes it: editor state + edited weights, fsynced."""
    path = Path(folder) / "state.pt"
    t0 = time.perf_counter()
    with open(path, "wb") as f:
        torch.save(
            {
                "editor": ed.state_dict(),
                "weights": {n: m.weight.detach() for n, m in ed.modules.items()},
            },
            f,
        )
        f.flush()
        os.fsync(f.fileno())
    secs = time.perf_counter() - t0
    size = path.stat().st_size
    path.unlink()
    return size, secs


def saved_bytes(model, fn, out):
    """fn wrapped to put in out["act"] the bytes of the activations autograd keeps during a call, one
    chunk's worth (capture.CHUNK rows at a time), parameters (saved by reference, never copied) left out."""
    import capture

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}

    def run():
        seen = {}

        def pack(t):
            if t.untyped_storage().data_ptr() not in params:
                seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn()
        out["act"] = sum(seen.values()) / math.ceil(EDITS / capture.CHUNK)

    return run


def forward_only(model, batch):
    """The capture's forward alone, in its chunks, with no graph."""
    import capture

    with torch.no_grad():
        for lo in range(0, batch["input_ids"].shape[0], capture.CHUNK):
            T = int(batch["attention_mask"][lo : lo + capture.CHUNK].sum(1).max())
            answer_logits(model, {k: v[lo : lo + capture.CHUNK, :T] for k, v in batch.items()})


def set_depth(model, k, full_list):
    """Keep the first k blocks of full_list (the model's blocks at build time)."""
    name, _ = blocks(model)
    parent, attr = name.rsplit(".", 1) if "." in name else ("", name)
    setattr(model.get_submodule(parent), attr, torch.nn.ModuleList(full_list[:k]))
    model.config.get_text_config().num_hidden_layers = k


def depth_times(model, batch, device, reps):
    """fb1, fbD, f1, fD (s) at depth 1 and at the model's depth D, with the edited layer in block 0, and
    per block: f = (fD - f1) / (D - 1), b = (fbD - fb1) / (D - 1) - f, activation bytes."""
    from capture import forward_backward

    _, full_list = blocks(model)
    full_list = list(full_list)
    mod = dict(model.named_modules())[mlp_output(model, 0)]
    D = len(full_list)
    out = {"depth": D}
    for k, key in ((D, "D"), (1, "1")):
        set_depth(model, k, full_list)
        act = {}
        out[f"fb{key}"] = timed(
            saved_bytes(model, lambda: forward_backward(model, {"l0": mod}, batch), act),
            device,
            reps,
        )
        out[f"f{key}"] = timed(lambda: forward_only(model, batch), device, reps)
        out[f"act{key}"] = act["act"]
    set_depth(model, D, full_list)
    out["f"] = max(out["fD"] - out["f1"], 0.0) / (D - 1)
    out["b"] = max(out["fbD"] - out["fb1"], 0.0) / (D - 1) - out["f"]
    out["act_block"] = max(out["actD"] - out["act1"], 0.0) / (D - 1)
    return out


def phases(model, tok, layers, captured, method, eigh, Sigma, steps, device):
    """Per edited layer: the method's phase seconds (mean of the steps after the first), the editor's
    resident state bytes, one checkpoint's bytes and seconds, and run_stream's drift seconds.
    captured: (loss, cap, rows, n_requests) of one capture, shared by the methods (its K and G do not
    depend on the method)."""
    ed = Editor(model, tok, layers, method, lr=1e-6, alpha=10.0, eigh=eigh)
    loss, cap, rows, n_requests = captured
    if method != "no_ln":
        seed_statistics(ed, cap, Sigma)
    W0 = {n: m.weight.detach().to("cpu", copy=True) for n, m in ed.modules.items()}
    reps = [ed.update(cap, loss, rows, n_requests)["seconds"] for _ in range(max(steps, 2))][1:]
    out = {
        k: sum(r[k] for r in reps) / len(reps) / len(layers)
        for k in ("stats", "normalize", "solve", "apply")
    }
    out["drift"] = timed(
        lambda: [drift_norm(m.weight, W0[n]) for n, m in ed.modules.items()], device, 1
    ) / len(layers)
    out["state_bytes"] = tensor_bytes(ed.state_dict()) / len(layers)
    with tempfile.TemporaryDirectory() as tmp:
        out["save_bytes"], out["save_seconds"] = checkpoint(ed, tmp)
    out["save_bytes"] /= len(layers)
    out["answer_tokens"] = rows[0]
    return out


def measure_cut(name, cfg, tok, device, dtype, routes, steps, reps, depth=2):
    """Everything measured on the depth-cut model of one config (module docstring): 2 blocks, the fewest
    that hold two edited layers; the validation's small model takes more, for per-block times that
    stand out of the noise."""
    torch.manual_seed(0)
    model = random_model(cfg, n_layers=depth, vocab=len(tok), dtype=dtype, device=device)
    layers = [mlp_output(model, 0), mlp_output(model, 1)]
    mod = dict(model.named_modules())[layers[0]]
    d_out, d_in = mod.weight.shape
    ed = Editor(model, tok, layers, "no_ln")
    batch, groups = ed._batch(load("synthetic", EDITS))
    out = {
        "model": name,
        "d_in": d_in,
        "d_out": d_out,
        "device": str(device),
        "dtype": str(dtype),
        **depth_times(model, batch, device, reps),
    }
    captured = (*ed.capture(batch, groups), [int((batch["labels"] != -100).sum())], EDITS)
    Sigma = covariance(spectrum(d_out), device=device)
    out["sigma_g_bytes"] = d_out * d_out * 8
    out["weight_bytes"] = d_out * d_in * mod.weight.element_size()
    for label, method, eigh in routes:
        out[label] = phases(
            model,
            tok,
            layers,
            captured,
            method,
            eigh,
            Sigma,
            steps if label[-7:] != "float64" else 2,
            device,
        )
        out[label]["state_over_sigma"] = out[label]["state_bytes"] / out["sigma_g_bytes"]
    return out


def n_params(cfg):
    model = random_model(cfg, device="meta")
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def project(m, cfg, layers, write_bps, weight_bytes=4, n=RUN_EDITS, warmup=WARMUP):
    """The full model from a depth-cut measurement m (module docstring); every figure here is projected."""
    L = random_model(cfg, device="meta").config.get_text_config().num_hidden_layers
    low = min(int(x.split(".")[-3]) for x in layers)
    fb = m["fb1"] + (L - 1) * m["f"] + (L - 1 - low) * m["b"]
    out = {"blocks": L, "edited_layers": len(layers), "lowest_block": low, "forward_backward_s": fb}
    edit_steps, warm_steps = math.ceil(n / EDITS), math.ceil(warmup / EDITS)
    for label in ("stableedit", "ultraedit"):
        p = m[label]
        method = sum(p[k] for k in ("stats", "normalize", "solve", "apply", "drift")) * len(layers)
        step, warm = fb + method, fb + p["stats"] * len(layers)
        save_bytes = len(layers) * (p["state_bytes"] + m["d_in"] * m["d_out"] * weight_bytes)
        save_s = save_bytes / write_bps
        every = max(1, math.ceil(19 * save_s / step))  # --save-every auto, in steps
        saves = 2 + (edit_steps + warm_steps) // every  # the first, the policy's, the final
        wall = edit_steps * step + warm_steps * warm
        out[label] = {
            "s_per_edit": step / EDITS,
            "method_s_per_step": method,
            "run_hours": wall / 3600,
            "save_bytes": save_bytes,
            "save_s": save_s,
            "save_every_steps": every,
            "saves": saves,
            "bytes_written": saves * save_bytes,
            "save_share": saves * save_s / (wall + saves * save_s),
        }
    out["ratio"] = out["stableedit"]["s_per_edit"] / out["ultraedit"]["s_per_edit"]
    params = n_params(cfg)
    act = m["act_block"] * (L - low) / 4 * weight_bytes  # measured in float32
    # Psi/dof, eigh, U in float64; Delta, W copy
    transient = 3 * m["sigma_g_bytes"] + 2 * m["d_in"] * m["d_out"] * 4
    out["memory"] = {
        "weights": params * weight_bytes,
        "editor_state": len(layers) * m["stableedit"]["state_bytes"],
        "activations": act,
        "transient": transient,
        "w0_host": len(layers) * m["d_in"] * m["d_out"] * weight_bytes,
    }
    out["memory"]["peak_device"] = sum(
        out["memory"][k] for k in ("weights", "editor_state", "activations", "transient")
    )
    return out


def whitening_routes(d, device="cpu", n=300):
    """float32 against float64 eigh at width d on Sigma_g spectra measured on SmolLM2/Gemma (min, median and
    max condition number): seconds of each eigh, relative error of the whitened gradients and of cond."""
    out = []
    for which in ("min", "median", "max"):
        lam = spectrum(d, which)
        Sigma = covariance(lam, seed=1, device=device)
        # g ~ N(0, Sigma)
        G = torch.randn(n, d, dtype=torch.float64, device=device) @ torch.linalg.cholesky(Sigma).T
        mu = torch.zeros(d, dtype=torch.float64, device=device)
        row = {"spectrum": which, "cond": (lam[-1] / lam[0]).item()}
        got = {}
        for dt in (torch.float64, torch.float32):
            t0 = clock(device)
            lam_, U, cond = eigen(Sigma, dtype=dt)
            row[f"eigh_{str(dt)[6:]}_s"] = clock(device) - t0
            got[dt] = zca(G, mu, lam_, U), cond
        (g64, c64), (g32, c32) = got[torch.float64], got[torch.float32]
        row["whitened_rel_err"] = ((g32 - g64).norm() / g64.norm()).item()
        row["row_rel_err_max"] = ((g32 - g64).norm(dim=1) / g64.norm(dim=1)).max().item()
        row["cond_rel_err"] = abs(c32 - c64) / c64
        out.append(row)
    return out


def validate(tok, reps, steps=5, depth=6):
    """The projection against the whole SmolLM2-135M: its preset layers, 100 synthetic edits per step,
    Sigma_g seeded with its own measured spectrum (no stretch); seconds per edit, both methods: the
    fastest step after the first, as every timing of the cut is the fastest of its repeats (interference
    only slows). Its blocks take ~0.1 s, so the
    cut keeps `depth` of them."""
    model, tok, preset = load_model("smollm2-135m")
    layers = preset_layers(preset, "zsre")
    requests = load("synthetic", EDITS)  # the cut's batch, every step: same tokens, same cost
    d = model.config.hidden_size
    Sigma = covariance(spectrum(d), seed=2)
    measured = {}
    for method in ("stableedit", "ultraedit"):
        ed = Editor(model, tok, layers, method, lr=preset["lr"], alpha=preset["alpha"])
        batch, groups = ed._batch(requests)
        seed_statistics(ed, ed.capture(batch, groups)[1], Sigma)
        walls = []
        for _ in range(steps):
            t0 = time.perf_counter()
            ed.edit(requests)
            walls.append(time.perf_counter() - t0)
        measured[method] = min(walls[1:]) / EDITS
    cfg = type(model.config)(**model.config.to_dict())
    m = measure_cut(
        "smollm2-135m",
        cfg,
        tok,
        "cpu",
        torch.float32,
        [("stableedit", "stableedit", "auto"), ("ultraedit", "ultraedit", "auto")],
        steps,
        reps,
        depth,
    )
    p = project(m, cfg, layers, write_bps=1e12)
    # the live editor has no run_stream drift per step: compare like with like
    proj = {k: p[k]["s_per_edit"] - m[k]["drift"] * len(layers) / EDITS for k in measured}
    return {
        "measured_s_per_edit": measured,
        "projected_s_per_edit": proj,
        "reps": reps,
        "cut": {k: m[k] for k in ("depth", "fb1", "fbD", "f1", "fD", "f", "b")},
        "forward_backward_s": p["forward_backward_s"],
        "method_s_per_step": {k: p[k]["method_s_per_step"] for k in measured},
        "projected_over_measured": {k: proj[k] / measured[k] for k in measured},
    }


def tiny_config(cfg):
    """A PAPER_CONFIGS entry at tiny width and full depth: the --full path's test on a CPU."""
    cls, kw = cfg
    small = {
        "n_embd": 64,
        "n_inner": 256,
        "n_head": 4,
        "rotary_dim": 8,
        "hidden_size": 64,
        "intermediate_size": 224,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    }
    return cls, {**kw, **{k: v for k, v in small.items() if k in kw}}


def full_run(name, cfg, tok, device, dtype, steps):
    """The whole model with Table 6's ZsRE layers: one statistics-only step, Sigma_g seeded as on the CPU,
    then steps + 1 edit steps per method; seconds per edit (mean after the first), phases, peak memory."""
    torch.manual_seed(0)
    model = random_model(cfg, vocab=len(tok), dtype=dtype, device=device)
    layers = preset_layers(PRESETS[name], "zsre")
    requests = load("synthetic", (steps + 2) * EDITS)
    d = model.config.get_text_config().hidden_size
    Sigma = covariance(spectrum(d), device=device)
    out = {"model": name, "device": str(device), "dtype": str(dtype), "layers": len(layers)}
    for method in ("stableedit", "ultraedit"):
        if torch.device(device).type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        ed = Editor(model, tok, layers, method, lr=PRESETS[name]["lr"], alpha=10.0)
        ed.edit(requests[:EDITS], apply=False)  # Algorithm 1's warm-up, statistics only
        seed_statistics(ed, ed.capture(*ed._batch(requests[:EDITS]))[1], Sigma)
        walls, secs = [], []
        for i in range(EDITS, (steps + 2) * EDITS, EDITS):
            t0 = clock(device)
            secs.append(ed.edit(requests[i : i + EDITS])["seconds"])
            walls.append(clock(device) - t0)
        r = {
            "s_per_edit": sum(walls[1:]) / len(walls[1:]) / EDITS,
            "phases_s": {k: sum(s[k] for s in secs[1:]) / len(secs[1:]) for k in secs[0]},
        }
        if torch.device(device).type == "cuda":
            r["max_memory_allocated"] = torch.cuda.max_memory_allocated()
        with tempfile.TemporaryDirectory() as tmp:
            r["save_bytes"], r["save_seconds"] = checkpoint(ed, tmp)
        out[method] = r
        del ed
    out["ratio"] = out["stableedit"]["s_per_edit"] / out["ultraedit"]["s_per_edit"]
    return out


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
