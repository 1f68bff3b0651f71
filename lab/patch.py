"""The edit as a patch: W_T - W_0 of each edited layer, saved, re-applied or reverted.

A lifelong edit changes only the edited matrices (Algorithm 1: W <- W + Delta^T, layer by layer),
so what a stream did to a model is the sum of its updates per layer, sum_t Delta_t^T = W_T - W_0:
megabytes where the whole model is gigabytes. A patch is a safetensors file of those differences,
in the weight dtype, with metadata (model, layers, shapes, method, lr, edits) and a fingerprint of
every *other* parameter -- the ones an edit never changes -- so a patch is refused by a model it
was not made for, and the same fingerprint serves the edited and the unedited model alike. The
norms |W_0|_F and |W_T|_F of each edited layer tell which of the two a model holds, so applying a
patch twice, or reverting one that was never applied, is refused too (unless the update changed no
norm by 1e-5 of itself). A SHA-256 of the differences and a finiteness check (lab.validate) refuse a
damaged or edited patch before it touches a weight.

    save_patch("edit.safetensors", model, W0, {"method": "stableedit", "lr": 2.5e-4, "edits": 1000})
    apply_patch(model, "edit.safetensors")                  # W_0 -> W_T
    apply_patch(model, "edit.safetensors", revert=True)     # W_T -> W_0
    python run_stream.py --apply-patch edit.safetensors --save-model DIR   # patch_mode
"""

import json
import math
import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save

from capture import DataError, ModelError
from lab.fit import check_fit, layer_info
from lab.lora import merge_lora, read_lora, save_lora, written_ranks
from lab.models import load_model
from lab.outputs import atomic_write
from lab.validate import digest, finite

FORMAT = "stableedit-patch/1"


def save_patch(path, model, W0, meta):
    """W - W0 for each layer in W0 ({layer name: unedited weight}), written atomically."""
    named = dict(model.named_modules())
    diff = {
        n: (named[n].weight.detach().to(W.device).float() - W.float())
        .to(W.dtype)
        .cpu()
        .contiguous()
        for n, W in W0.items()
    }
    finite(diff, f"{path}: the patch to write")
    made = layer_info(model, W0)
    info = {
        "format": FORMAT,
        "sha256": digest(diff),
        **{k: v if k == "fingerprint" else json.dumps(v) for k, v in made.items()},
        **{k: json.dumps(v) for k, v in meta.items()},
    }
    blob = save(diff, metadata=info)
    atomic_write(path, lambda f: f.write(blob))
    return diff


def read_patch(path):
    """(differences {layer: tensor}, metadata with its JSON values decoded); one-line DataError if the
    file is unreadable, its metadata damaged, its checksum off or a difference not finite."""
    try:
        with safe_open(str(path), "pt") as f:
            raw = f.metadata() or {}
        diff = load_file(str(path))
    except (OSError, SafetensorError) as e:
        raise DataError(f"{path}: not a readable patch ({e})") from None
    if raw.get("format") != FORMAT:
        raise DataError(f"{path}: not a stableedit patch (format {raw.get('format')!r})")
    try:
        meta = {
            k: v if k in ("format", "fingerprint", "sha256") else json.loads(v)
            for k, v in raw.items()
        }
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: damaged patch metadata (not JSON: {e.msg})") from None
    why = _bad_meta(meta, diff)
    if why:
        raise DataError(f"{path}: damaged patch metadata ({why})")
    if digest(diff) != meta["sha256"]:
        raise DataError(
            f"{path}: checksum mismatch: the differences changed after the patch was written "
            "(damaged or edited); make the patch again"
        )
    finite(diff, str(path))
    return diff, meta


def _bad_meta(meta, diff):
    """What is wrong with a patch's decoded metadata, or None."""
    layers, shapes, norms = meta.get("layers"), meta.get("shapes"), meta.get("norms")
    if (
        not isinstance(layers, list)
        or not all(isinstance(n, str) for n in layers)
        or set(layers) != set(diff)
    ):
        return "'layers' is not the list of the file's tensors"
    if "sha256" not in meta:
        return "no checksum: made by an older stableedit; make the patch again"
    if (
        not isinstance(meta.get("sha256"), str)
        or not isinstance(meta.get("fingerprint"), str)
        or not isinstance(meta.get("dtype"), str)
    ):
        return "'sha256', 'fingerprint' and 'dtype' must be strings"
    if not isinstance(shapes, dict) or any(shapes.get(n) != list(diff[n].shape) for n in layers):
        return "'shapes' does not give each tensor's shape"
    if not isinstance(norms, dict) or any(
        not isinstance(norms.get(n), list)
        or len(norms[n]) != 2
        or not all(isinstance(x, (int, float)) and math.isfinite(x) for x in norms[n])
        for n in layers
    ):
        return "'norms' is not two finite numbers per layer"
    return None


@torch.no_grad()
def apply_patch(model, path, revert=False):
    """W <- W + (W_T - W_0), or W - (W_T - W_0) with revert=True, in place; returns the metadata.
    check_fit refuses, before touching a weight, a model the patch does not fit."""
    diff, meta = read_patch(path)
    check_fit(model, path, meta, lambda n, _: meta["shapes"][n], "patch", revert)
    named, sign = dict(model.named_modules()), -1.0 if revert else 1.0
    for n in meta["layers"]:
        W = named[n].weight
        # in float32, then one rounding to the weight dtype: a bf16 model is rounded once, not twice
        W.copy_((W.float() + sign * diff[n].to(W.device).float()).to(W.dtype))
    return meta


def save_model(model, tok, path):
    """The model and its tokenizer saved into the new folder path: written beside it, then renamed (no
    half-written folder under the name); the temporary folder is removed on every way out."""
    tmp = Path(f"{path}.tmp{os.getpid()}")
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        os.replace(tmp, path)
    except OSError as e:  # a full disk, or the name taken while the run went on
        raise DataError(f"--save-model {path}: could not be written ({e.strerror or e})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def patch_mode(args):
    """--apply-patch: a patch file (read and checked before the model loads) applied and saved, or
    written as a LoRA adapter; or a LoRA adapter folder (read and checked likewise) merged into the
    model and saved. Writes to the real paths lab.paths.outputs resolved (args.paths)."""
    adapter, paths = Path(args.apply_patch).is_dir(), args.paths
    if adapter:
        read_lora(args.apply_patch)  # the adapter's parts checked against each other first
    else:
        diff, meta = read_patch(args.apply_patch)
    model, tok, _ = load_model(args.model, args.dtype, args.device, args.device_map)
    if adapter:
        model = merge_lora(model, args.apply_patch)  # checks the adapter fits this model
        save_model(model, tok, paths["--save-model"])
        print(
            f"merged the LoRA adapter {args.apply_patch} into {args.model}; saved in {args.save_model}"
        )
        return 0
    meta = apply_patch(model, args.apply_patch)  # checks the patch fits this model
    if args.save_lora:
        diff = {n: d.float() for n, d in diff.items()}
        kept = save_lora(paths["--save-lora"], diff, model, meta, args.lora_rank)
        print(
            f"{args.apply_patch} as {written_ranks(paths['--save-lora'], args.lora_rank)}; share of "
            f"|W_T - W_0|_F kept per layer {min(kept.values()):.4f}-{max(kept.values()):.4f}"
        )
    if args.save_model:
        save_model(model, tok, paths["--save-model"])
        print(
            f"applied {args.apply_patch} ({meta.get('method')}, {meta.get('edits')} edits of "
            f"{meta.get('dataset')}, {len(meta['layers'])} layers) to {args.model}; saved in {args.save_model}"
        )
    return 0


if __name__ == "__main__":
    import tempfile

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 8))
    W0 = {"2": model[2].weight.detach().clone()}
    with torch.no_grad():
        model[2].weight.add_(0.01 * torch.randn(8, 16))  # "the edit"
    WT = model[2].weight.detach().clone()
    path = Path(tempfile.mkdtemp()) / "edit.safetensors"
    save_patch(path, model, W0, {"model": "demo", "method": "stableedit", "edits": 1})
    apply_patch(model, path, revert=True)
    back = (model[2].weight - W0["2"]).norm() / W0["2"].norm()
    apply_patch(model, path)
    again = (model[2].weight - WT).norm() / WT.norm()
    print(
        f"revert: |W - W_0|/|W_0| = {back:.1e}; re-apply: |W - W_T|/|W_T| = {again:.1e}; "
        f"{path.stat().st_size} bytes"
    )
    try:
        apply_patch(
            torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 8)),
            path,
        )
    except ModelError as e:
        print(f"another model is refused: {e}")
