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
    model = merge_lora(base, "edit-lora")                    # W_0 + B A, as merge_and_unload

An adapter is checked as strictly as a patch (lab/patch.py) before it touches a weight: its config
against its tensors (targets, ranks, scale: PEFT would skip or mis-scale what they disagree on), a
checksum of the factors, the fingerprint of the model it was made for, and |W_0|_F of each layer, so
an edit is not added to a model that carries it already.

The SVD runs in float64 on the host: exact for SmolLM2's 576 x 1536 layers; from width 2048 (the
paper's 4096 x 16384) it takes the eigendecomposition of the smaller Gram matrix D D^T instead,
which gives the same U, S (to float64 rounding of S^2) at a fraction of the cost.
"""

import json
import math
import os
import re
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from transformers.pytorch_utils import Conv1D

from capture import DataError
from lab.fit import check_fit as fit_check
from lab.fit import fingerprint
from lab.validate import digest, finite

GRAM_WIDTH = 2048  # from this smaller dimension on, the SVD goes through the Gram matrix
RANK_TOL = 1e-6  # singular values below this times the largest are numerical noise ("full" rank)
FORMAT = "stableedit-lora/1"  # in the factors' metadata: what read_lora can check
FACTOR = re.compile(r"^base_model\.model\.(.+)\.lora_([AB])\.weight$")  # PEFT's name of a factor


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
    layers {name: W_T - W_0 as the weight is stored}, cut to rank; returns {layer: share kept}. The
    metadata records what a patch does (lab.fit.layer_info): meta's |W_0|_F, |W_T|_F per layer
    ("norms"; without them the model must hold W_0), the fingerprint of the other parameters, and a
    SHA-256 of the factors, so that check_fit refuses another model, a model that carries the edit
    already, and a changed file."""
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
    info = {k: json.dumps(v) for k, v in {**_made_on(model, diff, meta), "kept": kept}.items()}
    info.update(
        rank=json.dumps(rank), ranks=json.dumps(ranks), format=FORMAT, sha256=digest(tensors)
    )
    tmp = Path(f"{path}.tmp{os.getpid()}")
    try:
        tmp.mkdir(parents=True)
        (tmp / "adapter_config.json").write_text(json.dumps(config, indent=2))
        save_file(tensors, tmp / "adapter_model.safetensors", metadata=info)
        os.replace(tmp, path)
    except OSError as e:  # a full disk, or the name taken while the run went on
        raise DataError(f"--save-lora {path}: could not be written ({e.strerror or e})") from None
    finally:  # on every way out: nothing half-written stays beside the adapter
        shutil.rmtree(tmp, ignore_errors=True)
    return kept


def _made_on(model, diff, meta):
    """meta (without a patch's own format and checksum) with what the adapter records of its model:
    layers, dtype, the fingerprint of the parameters it does not edit, |W_0|_F and |W_T|_F per layer."""
    named = dict(model.named_modules())
    out = {k: v for k, v in meta.items() if k not in ("format", "sha256")}
    out["layers"] = list(diff)
    out.setdefault("dtype", str(named[next(iter(diff))].weight.dtype))
    if "fingerprint" not in out:
        out["fingerprint"] = fingerprint(model, diff)
    if "norms" not in out:  # the model holds W_0
        W = {n: named[n].weight.detach().double().cpu() for n in diff}
        out["norms"] = {
            n: [W[n].norm().item(), (W[n] + D.double()).norm().item()] for n, D in diff.items()
        }
    return out


def read_lora(path):
    """(config, {layer: (A (r, d_in), B (d_out, r))}, metadata) of an adapter folder, its parts checked
    against each other before any model is touched: the file's checksum and finiteness, its metadata,
    and the config's target_modules, r, rank_pattern and lora_alpha against the tensors, so that PEFT
    reads exactly what the file holds (no module skipped, no scale changed). One-line DataError."""
    path = Path(path)
    try:
        config = json.loads((path / "adapter_config.json").read_text())
        with safe_open(str(path / "adapter_model.safetensors"), "pt") as f:
            raw = f.metadata() or {}
        tensors = load_file(str(path / "adapter_model.safetensors"))
    except (OSError, ValueError, SafetensorError) as e:
        raise DataError(f"{path}: not a readable LoRA adapter ({type(e).__name__})") from None
    if not isinstance(config, dict):
        raise DataError(f"{path}: adapter_config.json is not a JSON object")
    meta = _metadata(path, raw, tensors)
    pairs = _factors_of(path, config, tensors)
    if set(meta["layers"]) != set(pairs) or set(meta["norms"]) != set(pairs):
        raise DataError(
            f"{path}: damaged adapter metadata ('layers' and 'norms' do not name the targeted modules)"
        )
    return config, pairs, meta


def _metadata(path, raw, tensors):
    """The adapter's decoded metadata, checked: this version's format, the checksum of the factors,
    finite factors, a fingerprint and two finite norms per layer."""
    if raw.get("format") != FORMAT:
        raise DataError(
            f"{path}: not an adapter of this stableedit (no {FORMAT!r} in its metadata: made by an "
            "older version or another tool); make it again from the run or its patch"
        )
    try:
        meta = {k: v if k in ("format", "sha256") else json.loads(v) for k, v in raw.items()}
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: damaged adapter metadata (not JSON: {e.msg})") from None
    if digest(tensors) != meta.get("sha256"):
        raise DataError(
            f"{path}: checksum mismatch: the factors changed after the adapter was written "
            "(damaged or edited); make it again"
        )
    finite(tensors, str(path))
    norms, layers = meta.get("norms"), meta.get("layers")
    if (
        not isinstance(meta.get("fingerprint"), str)
        or not isinstance(layers, list)
        or not isinstance(norms, dict)
        or any(
            not isinstance(v, list)
            or len(v) != 2
            or not all(isinstance(x, (int, float)) and math.isfinite(x) for x in v)
            for v in norms.values()
        )
    ):
        raise DataError(
            f"{path}: damaged adapter metadata (a fingerprint, the layers and two finite norms per "
            "layer are needed)"
        )
    return meta


def _factors_of(path, config, tensors):
    """{layer: (A, B)} of the targeted modules, DataError unless the config and the tensors agree."""
    found = {}
    for k, t in tensors.items():
        m = FACTOR.match(k)
        if m is None:
            raise DataError(
                f"{path}: adapter_model.safetensors holds {k!r}, which is no LoRA factor"
            )
        found.setdefault(m.group(1), {})[m.group(2)] = t
    targets = config.get("target_modules")
    ranks, alphas = config.get("rank_pattern") or {}, config.get("alpha_pattern") or {}
    if (
        config.get("peft_type") != "LORA"
        or config.get("use_dora")
        or config.get("use_rslora")
        or not isinstance(targets, list)
        or not all(isinstance(n, str) for n in targets)
        or not isinstance(ranks, dict)
        or not isinstance(alphas, dict)
    ):
        raise DataError(
            f"{path}: adapter_config.json is not a plain LoRA config as stableedit writes it "
            "(peft_type LORA, no DoRA or rsLoRA, target_modules a list of module names)"
        )
    for n in found:
        if n not in targets:
            raise DataError(
                f"{path}: adapter_model.safetensors holds factors of {n}, which adapter_config.json's "
                "target_modules leaves out: PEFT would skip them (a partial merge)"
            )
    for n in [*ranks, *alphas]:
        if n not in targets:
            raise DataError(
                f"{path}: adapter_config.json's rank or alpha pattern names {n!r}, no target"
            )
    return {n: _pair(path, n, found.get(n, {}), config, ranks, alphas) for n in targets}


def _pair(path, n, half, config, ranks, alphas):
    """(A, B) of one targeted module: both present, B (d_out, r) @ A (r, d_in), r the config's rank
    for it and lora_alpha = r (the adapter adds B A itself)."""
    for k in "AB":
        if k not in half:
            raise DataError(
                f"{path}: adapter_model.safetensors has no lora_{k} tensor for {n}, which "
                "adapter_config.json targets: the file is incomplete"
            )
    A, B = half["A"], half["B"]
    if A.dim() != 2 or B.dim() != 2 or A.shape[0] != B.shape[1]:
        raise DataError(
            f"{path}: the factors of {n} are A {list(A.shape)} and B {list(B.shape)}, not "
            "B (d_out, r) and A (r, d_in)"
        )
    r, want, alpha = (
        A.shape[0],
        ranks.get(n, config.get("r")),
        alphas.get(n, config.get("lora_alpha")),
    )
    if want != r:
        raise DataError(
            f"{path}: adapter_config.json gives {n} rank {want} (r, rank_pattern), its tensors rank {r}"
        )
    if alpha != r:
        raise DataError(
            f"{path}: adapter_config.json scales {n} by lora_alpha / r = {alpha} / {r}; the adapter "
            "holds W_T - W_0 itself (lora_alpha = r)"
        )
    return A, B


def delta(module, A, B):
    """B A as the module stores its weight (Conv1D: transposed), float32."""
    D = B.float() @ A.float()
    return D.T if isinstance(module, Conv1D) else D


def check_fit(model, path):
    """(the adapter's {layer: (A, B)}, its metadata) after read_lora, or ModelError (one line) unless
    the adapter fits the model as a patch must (lab.fit.check_fit): an edit is never added twice."""
    _, pairs, meta = read_lora(path)
    meta = {**meta, "layers": list(pairs)}
    stored = lambda n, m: (pairs[n][1].shape[0], pairs[n][0].shape[1])[
        :: -1 if isinstance(m, Conv1D) else 1
    ]  # noqa: E731
    fit_check(model, path, meta, stored, "adapter")
    return pairs, meta


def load_lora(model, path):
    """The model with the adapter at path loaded through PEFT, after check_fit."""
    from peft import PeftModel

    check_fit(model, path)
    return PeftModel.from_pretrained(model, str(path)).eval()


@torch.no_grad()
def merge_lora(model, path):
    """The model with the adapter merged, W <- W + B A (PEFT's merge_and_unload at lora_alpha = r), in
    float32 and rounded once to the weight dtype, as lab.patch.apply_patch; every layer is checked
    (check_fit) before the first is changed, so a merge is whole or nothing."""
    pairs, _ = check_fit(model, path)
    named = dict(model.named_modules())
    for n, (A, B) in pairs.items():
        W = named[n].weight
        W.copy_((W.float() + delta(named[n], A, B).to(W.device)).to(W.dtype))
    return model


def written_ranks(path, rank):
    """The adapter at path in a message: the ranks its config gives (those written), and why they are
    below --lora-rank where they are."""
    ranks = sorted(
        set(json.loads((Path(path) / "adapter_config.json").read_text())["rank_pattern"].values())
    )
    got = f"rank {ranks[0]}" if len(ranks) == 1 else f"ranks {ranks[0]}-{ranks[-1]}"
    if rank == "full":
        why = "each layer's exact rank"
    elif ranks[-1] < int(rank):
        why = f"--lora-rank {rank} is above each layer's rank, at most min(d_out, d_in)"
    else:
        why = f"--lora-rank {rank}"
    return f"a LoRA adapter of {got} ({why}) in {path}"


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
