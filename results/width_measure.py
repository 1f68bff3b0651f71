"""The timed runs of results/width.py on a depth-cut model at the paper's width, and the eigh routes.

measure_cut builds one of the paper's configs (lab.presets.PAPER_CONFIGS, random weights) with a few
blocks and measures, per model: the editor's forward+backward at depth 1 and D and the forward alone
(per-block seconds and activation bytes), each method's phases per edited layer on one capture
(Editor.update), the editor's resident state and one checkpoint. whitening_routes times the float64
and float32 eigh of Sigma_g at the width and the error of the float32 route. Used by
`python results/width.py` (results/width.json); it stores nothing itself.
"""

import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import capture  # noqa: E402
from capture import answer_logits, forward_backward  # noqa: E402
from data import load  # noqa: E402
from editor import Editor  # noqa: E402
from lab.models import blocks, mlp_output, random_model  # noqa: E402
from lab.phases import drift_norm  # noqa: E402
from whitening import eigen, zca  # noqa: E402
from width_sigma import covariance, seed_statistics, spectrum  # noqa: E402

EDITS = 100  # edits per step


def clock(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


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
    captured: (loss, cap, answer tokens, n_requests) of one capture, shared by the methods (its K and G
    do not depend on the method)."""
    ed = Editor(model, tok, layers, method=method, lr=1e-6, alpha=10.0, eigh=eigh)
    loss, cap, answer_tokens, n_requests = captured
    if method != "no_ln":
        seed_statistics(ed, cap, Sigma)
    W0 = {n: m.weight.detach().to("cpu", copy=True) for n, m in ed.modules.items()}
    reps = [ed.update(cap, loss, n_requests)["seconds"] for _ in range(max(steps, 2))][1:]
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
    out["answer_tokens"] = answer_tokens
    return out


def measure_cut(name, cfg, tok, device, dtype, routes, steps, reps, depth=2):
    """Everything measured on the depth-cut model of one config (module docstring): 2 blocks, the fewest
    that hold two edited layers; the validation's small model takes more, for per-block times that
    stand out of the noise. routes: (label, method, eigh) of each method measured."""
    torch.manual_seed(0)
    model = random_model(cfg, n_layers=depth, vocab=len(tok), dtype=dtype, device=device)
    layers = [mlp_output(model, 0), mlp_output(model, 1)]
    mod = dict(model.named_modules())[layers[0]]
    d_out, d_in = mod.weight.shape
    ed = Editor(model, tok, layers, method="no_ln")
    batch = ed._batch(load("synthetic", EDITS))
    out = {
        "model": name,
        "d_in": d_in,
        "d_out": d_out,
        "device": str(device),
        "dtype": str(dtype),
        **depth_times(model, batch, device, reps),
    }
    captured = (*ed.capture(batch), int((batch["labels"] != -100).sum()), EDITS)
    Sigma = covariance(spectrum(d_out), device=device)
    out["sigma_g_bytes"] = d_out * d_out * 8
    out["weight_bytes"] = d_out * d_in * mod.weight.element_size()
    for label, method, eigh in routes:
        n_steps = steps if label[-7:] != "float64" else 2
        out[label] = phases(model, tok, layers, captured, method, eigh, Sigma, n_steps, device)
        out[label]["state_over_sigma"] = out[label]["state_bytes"] / out["sigma_g_bytes"]
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
