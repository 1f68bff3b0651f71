"""The edit as a LoRA adapter: W_T - W_0 of each edited layer, cut to rank r, in PEFT's format.

A lifelong edit's total change is the sum of its updates (Algorithm 1: W <- W + Delta^T per step),
W_T - W_0 per edited layer. Each step's Delta_t has rank at most its answer tokens, but a long
stream's sum can reach full rank; a LoRA adapter keeps the best rank-r part of it (Eckart-Young):
with W_T - W_0 = U S V^T, B = U_r S_r^{1/2} and A = S_r^{1/2} V_r^T, so B A is the truncated SVD and
PEFT adds (lora_alpha / r) B A = B A to the layer (lora_alpha = r). Serving stacks load such an
adapter onto the unedited model, hot-swapped per request; `r = "full"` keeps each layer's exact
rank (PEFT's rank_pattern), so the adapter is the edit to float32 rounding.

    save_lora("edit-lora", diff, model, meta, rank=32)      # diff: {layer: W_T - W_0}, the patch's
    model = load_lora(base, "edit-lora")                     # PeftModel on the unedited model
    model = model.merge_and_unload()                         # W_0 + B A

The SVD runs in float64 on the host: exact for SmolLM2's 576 x 1536 layers; from width 2048 (the
paper's 4096 x 16384) it takes the eigendecomposition of the smaller Gram matrix D D^T instead,
which gives the same U, S (to float64 rounding of S^2) at a fraction of the cost.
"""

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers.pytorch_utils import Conv1D

from capture import DataError, ModelError

GRAM_WIDTH = 2048  # from this smaller dimension on, the SVD goes through the Gram matrix
RANK_TOL = 1e-6  # singular values below this times the largest are numerical noise ("full" rank)


def svd(D):
    """(U (d_out, k), S (k,), V (d_in, k)) of D (d_out, d_in), singular values descending, float64."""
    D = D.double()
    if min(D.shape) < GRAM_WIDTH:
        U, S, Vh = torch.linalg.svd(D, full_matrices=False)
        return U, S, Vh.T
    flip = D.shape[0] > D.shape[1]  # the Gram matrix of the smaller side
    M = D.T if flip else D
    lam, U = torch.linalg.eigh(M @ M.T)  # ascending
    lam, U = lam.flip(0).clamp_min(0), U.flip(1)
    S = lam.sqrt()
    V = (M.T @ U) / S.clamp_min(S[0] * 1e-30)
    return (V, S, U) if flip else (U, S, V)


def factors(D, rank):
    """(B (d_out, r), A (r, d_in), share of |D|_F kept) of the rank-r truncated SVD of D; rank "full"
    keeps every singular value above RANK_TOL of the largest."""
    U, S, V = svd(D)
    if rank == "full":
        rank = max(1, int((S > RANK_TOL * S[0]).sum()))
    r = min(int(rank), S.numel())
    root = S[:r].sqrt()
    B, A = U[:, :r] * root, root[:, None] * V[:, :r].T
    kept = (S[:r].square().sum() / S.square().sum()).sqrt().item() if S[0] > 0 else 1.0
    return B.float(), A.float(), kept


def save_lora(path, diff, model, meta, rank="full"):
    """A PEFT adapter folder at path: adapter_config.json and adapter_model.safetensors for the edited
    layers {name: W_T - W_0 as the weight is stored}, cut to rank; returns {layer: share kept}."""
    named = dict(model.named_modules())
    tensors, ranks, kept = {}, {}, {}
    for n, D in diff.items():
        conv = isinstance(named[n], Conv1D)  # GPT-2's Conv1D stores W as (d_in, d_out)
        B, A, kept[n] = factors(D.T if conv else D, rank)
        tensors[f"base_model.model.{n}.lora_A.weight"] = A.contiguous()
        tensors[f"base_model.model.{n}.lora_B.weight"] = B.contiguous()
        ranks[n] = A.shape[0]
    r = max(ranks.values())
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": r,
        "lora_alpha": r,
        "rank_pattern": ranks,
        "alpha_pattern": ranks,
        "target_modules": list(diff),
        "lora_dropout": 0.0,
        "bias": "none",
        "fan_in_fan_out": False,
        "init_lora_weights": True,
        "base_model_name_or_path": meta.get("source", meta.get("model")),
        "inference_mode": True,
    }
    info = {k: json.dumps(v) for k, v in {**meta, "rank": rank, "kept": kept}.items()}
    tmp = Path(f"{path}.tmp{os.getpid()}")
    tmp.mkdir(parents=True)
    try:
        (tmp / "adapter_config.json").write_text(json.dumps(config, indent=2))
        save_file(tensors, tmp / "adapter_model.safetensors", metadata=info)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return kept


def check_fit(model, path):
    """ModelError (one line) unless every module the adapter edits is a linear layer of this model
    with the adapter's shapes; DataError if the folder is not an adapter."""
    try:
        config = json.loads((Path(path) / "adapter_config.json").read_text())
        tensors = load_file(str(Path(path) / "adapter_model.safetensors"))
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable LoRA adapter ({type(e).__name__})") from None
    named = dict(model.named_modules())
    for n in config.get("target_modules", []):
        A, B = (tensors.get(f"base_model.model.{n}.lora_{k}.weight") for k in "AB")
        if n not in named or not hasattr(named[n], "weight") or A is None or B is None:
            raise ModelError(f"{path}: the adapter edits {n!r}, which this model does not have")
        shape = tuple(named[n].weight.shape)
        if isinstance(named[n], Conv1D):
            shape = shape[::-1]
        if (B.shape[0], A.shape[1]) != shape:
            raise ModelError(
                f"{path}: the adapter's {n} is {B.shape[0]} x {A.shape[1]}, this model's is "
                f"{shape[0]} x {shape[1]}: made for another model"
            )
    return config


def load_lora(model, path):
    """The model with the adapter at path loaded through PEFT, after check_fit."""
    from peft import PeftModel

    check_fit(model, path)
    return PeftModel.from_pretrained(model, str(path)).eval()


if __name__ == "__main__":
    import tempfile

    torch.manual_seed(0)
    D = torch.randn(64, 8) @ torch.randn(8, 96) + 1e-3 * torch.randn(64, 96)  # rank 8 plus noise
    for r in (4, 8, "full"):
        B, A, kept = factors(D, r)
        err = ((B @ A - D).norm() / D.norm()).item()
        print(f"rank {r}: |BA - D| / |D| = {err:.1e}, share of |D|_F kept {kept:.6f}")
    model = torch.nn.Sequential(torch.nn.Linear(96, 64))
    path = Path(tempfile.mkdtemp()) / "lora"
    save_lora(path, {"0": D}, model, {"model": "demo"}, rank=8)
    print("adapter files:", sorted(p.name for p in path.iterdir()))
