"""The memory plan of a run: will it fit, how long, how much disk -- before a weight is read.

    python run_stream.py --model gpt-j --dtype bfloat16 --plan

Prints, part by part, what a step of Algorithm 1 holds at its peak: the weights (counted on the meta
device, never allocated); per edited layer the editor state (stableedit's float64 Psi of Sigma_g,
d_out x d_out, and a group's trial posteriors while an edit step is checked; the k and g means and
variances; the previous update's ridge factors); the unedited copies W_0 (host memory, weight dtype);
one chunk's forward + backward activations; the step's captured K and G, its ridge factors and the
whitening workspace of two layers; one checkpoint and the disk the save policy writes; and, where a
stored measurement covers the model, the seconds per edit. The last line is `peak <X> GB`.

How each figure is had: sizes are shapes times dtype bytes. The answer tokens per step (M) and a
chunk's longest sequence (T) come from tokenizing the run's own requests with the run's tokenizer
(the default SmolLM2 tokenizer where the model's own is not on this machine, as --random-weights
uses). The activations are the bytes autograd saves for one chunk through two full-width blocks
minus one (lab/plan.activations: uninitialised weights, a small vocabulary), times the blocks the
backward crosses, plus the head's logits. The peak is the steady state (weights, W_0, statistics,
previous factors) plus the step's captures plus the larger of its two phases: forward + backward,
or the update (trial posteriors, factors, whitening, one layer's dense Delta and its application).
"""

import math
import resource

import torch

from capture import CHUNK, tokenize

GB = 1e9
BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
# disk write speed assumed for --save-every auto where no measurement is at hand (bytes/s)
WRITE_BPS = 1.0e9
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def skeleton(name, dtype):
    """The model on the meta device from its config: a paper model's published one (PAPER_CONFIGS),
    a converted preset's, or a hub id's or local path's (lab.models.model_skeleton)."""
    from lab.models import converted_source, model_skeleton, random_model
    from lab.presets import PAPER_CONFIGS

    if name in PAPER_CONFIGS:
        return random_model(PAPER_CONFIGS[name], dtype=DTYPES[dtype], device="meta")
    return model_skeleton(converted_source(name))


def block_of(model, layer):
    """(index of the block holding a layer, number of blocks)."""
    from lab.models import blocks

    name, bl = blocks(model)
    return int(layer[len(name) + 1 :].split(".")[0]), len(bl)


def step_tokens(requests, tok, batch, max_length):
    """(M, T): the most answer tokens one step captures, and the longest sequence of one chunk."""
    M = T = 0
    for lo in range(0, len(requests), batch):
        part = requests[lo : lo + batch]
        b = tokenize(tok, [r.prompt for r in part], [r.target for r in part], max_length)
        M = max(M, int((b["labels"] != -100).sum()))
        T = max(T, int(b["attention_mask"].sum(1).max()))
    return M, T


def saved_bytes(config, n_blocks, dtype, rows, T):
    """Bytes autograd saves for a forward of rows x T tokens through the first n_blocks of a model at
    full width, parameters excluded. The weights are uninitialised memory (only shapes matter), of
    which the forward touches the blocks and the embedding rows it looks up."""
    from lab.models import random_model

    model = random_model(config, n_layers=n_blocks, dtype=DTYPES[dtype], device="meta")
    model = model.to_empty(device="cpu").requires_grad_(False)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    total = 0

    def pack(t):
        nonlocal total
        if t.untyped_storage().data_ptr() not in params:
            total += t.untyped_storage().nbytes()
        return t

    emb = model.get_input_embeddings()
    handle = emb.register_forward_hook(lambda m, i, out: out.requires_grad_())
    ids = torch.randint(0, 256, (rows, T))  # any ids: the values do not change a shape
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.enable_grad():
            model.base_model(input_ids=ids, use_cache=False)
    finally:
        handle.remove()
    return total


def activations(model, config, layers, dtype, M, T):
    """One chunk's forward + backward: the saved bytes of one block times the blocks from the lowest
    edited one up, plus the head's float32 log-probabilities and their gradient on the chunk's
    answer positions."""
    lowest, L = min(block_of(model, n)[0] for n in layers), block_of(model, layers[0])[1]
    rows = min(CHUNK, max(1, M))
    per_block = saved_bytes(config, 2, dtype, rows, T) - saved_bytes(config, 1, dtype, rows, T)
    vocab = model.get_output_embeddings().weight.shape[0]
    m_chunk = math.ceil(M * rows / max(CHUNK, rows))  # a chunk's share of the step's answer tokens
    head = m_chunk * vocab * (BYTES[dtype] + 4 + 4)
    return per_block * (L - lowest) + head, per_block, L - lowest


def resident():
    """This process's resident bytes now (torch, transformers, the tokenizer, the requests)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def layer_state(d_in, d_out, method, M):
    """Bytes one edited layer's editor keeps between steps: (statistics, previous factors). stableedit's
    Psi is float64 d_out x d_out; the means and variances are float64 vectors; the factors float32."""
    full = d_out * d_out * 8 if method == "stableedit" else 0
    vectors = (2 * d_in + 2 * d_out) * 8 if method not in ("no_ln", "ft") else 0
    prev = M * (d_in + d_out) * 4 if M < d_in else d_in * d_out * 4
    return full + vectors, prev, full


def parts(cfg, model, tok, requests, runtime):
    """[(part, bytes, phase)] of a run's peak; phase: steady, capture, backward or update."""
    from editor import dims

    dtype, method = cfg["dtype"], cfg["method"]
    named = dict(model.named_modules())
    shapes = {n: dims(named[n]) for n in cfg["layers"]}  # (d_in, d_out)
    M, T = step_tokens(requests, tok, cfg["batch"], 256)
    weights = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    state = [layer_state(d_in, d_out, method, M) for d_in, d_out in shapes.values()]
    act, per_block, crossed = activations(model, model.config, cfg["layers"], dtype, M, T)
    d_in, d_out = max(shapes.values(), key=lambda s: s[0] * s[1])
    route = 4 if cfg["editor"]["eigh"] == "float32" else 8
    rows = [
        ("weights", weights * BYTES[dtype], "steady"),
        (
            "W_0: the edited layers unedited, host memory",
            sum(a * b for a, b in shapes.values()) * BYTES[dtype],
            "steady",
        ),
        ("statistics (Psi of Sigma_g, means, variances)", sum(s for s, _, _ in state), "steady"),
        ("previous update's factors (K, A)", sum(p for _, p, _ in state), "steady"),
        ("runtime: torch, transformers, tokenizer, requests (measured)", runtime, "steady"),
        (
            "captured K, G of one step",
            sum(M * (a + b) * BYTES[dtype] for a, b in shapes.values()),
            "capture",
        ),
        (
            f"activations of one chunk ({min(CHUNK, M)} rows x {T} tokens, {crossed} blocks x "
            f"{per_block / 1e6:.0f} MB + head)",
            act,
            "backward",
        ),
        (
            "trial posteriors of one group: two layers' new Psi",
            2 * max(f for _, _, f in state),
            "update",
        ),
        (
            "this step's factors (K, A) in float32",
            sum(M * (a + b + 1) * 4 for a, b in shapes.values()),
            "update",
        ),
        (
            "whitening workspace: two layers' Sigma_g, eigenvectors, LAPACK",
            2 * 4 * d_out * d_out * route if method == "stableedit" else 0,
            "update",
        ),
        (
            "one layer's dense Delta and its application",
            d_in * d_out * (4 + 4 + 2 * BYTES[dtype]),
            "update",
        ),
    ]
    return rows, M, T


def on_host(part):
    """W_0 and the runtime stay in host memory whatever --device is: an accelerator holds the model,
    not a second copy of it (lab/phases.load_editor)."""
    return part.startswith(("W_0", "runtime"))


def peak(rows, device="cpu"):
    """steady + capture + max(backward, update): the activations are freed before the update runs. On
    an accelerator, its memory: the host's parts left out."""
    by = {}
    for part, b, phase in rows:
        if device != "cpu" and on_host(part):
            continue
        by[phase] = by.get(phase, 0) + b
    return (
        by.get("steady", 0) + by.get("capture", 0) + max(by.get("backward", 0), by.get("update", 0))
    )


def checkpoint(rows):
    """Bytes of one editor_state.pt: the edited layers' weights, the statistics, the previous factors."""
    keep = ("W_0", "statistics", "previous update")
    return sum(b for part, b, _ in rows if part.startswith(keep))


def stored_speed(cfg):
    """(seconds per edit, where it comes from) for this model and method, or (None, why not):
    measured whole on this CPU (results/whole.json), else projected (results/width.json)."""
    import json
    from pathlib import Path

    here = Path(__file__).resolve().parent.parent / "results"
    for page, kind in (("whole.json", "measured"), ("width.json", "projected")):
        path = here / page
        if not path.exists():
            continue
        got = json.loads(path.read_text("utf-8"))
        got = got.get("runs", got.get("projection", {})).get(cfg["model"], {}).get(cfg["method"])
        if got and (kind == "projected" or got.get("dtype") == cfg["dtype"]):
            how = "float32" if kind == "projected" else cfg["dtype"]
            return got["s_per_edit"], f"{kind} on this 2-core CPU ({how}, results/{page})"
    return None, "no stored measurement covers this model and method"


def disk(cfg, every, save_bytes, s_per_edit):
    """What --save-every writes over the run: (saves, bytes written), None where it depends on time."""
    steps = math.ceil((cfg["n"] + cfg["warmup"]["n"]) / cfg["batch"])
    if every.isdigit():
        saves = 2 + steps // int(every)
    elif s_per_edit is None:
        return None
    else:  # auto: a save once 19x its own seconds have passed; seconds: one per that many seconds
        run_s = s_per_edit * (cfg["n"] + cfg["warmup"]["n"])
        gap = float(every[:-1]) if every.endswith("s") else 19 * save_bytes / WRITE_BPS
        saves = 2 + int(run_s // gap)
    return saves, saves * save_bytes


def show(cfg, save_every="auto"):
    """Print the plan; the last line `peak <X> GB`. Nothing is allocated but two blocks' activations."""
    from lab.models import default_tokenizer
    from lab.stream import load_stream

    model = skeleton(cfg["model"], cfg["dtype"])
    tok, whose = default_tokenizer(cfg["model"])
    requests, _, warm = load_stream(cfg)
    rows, M, T = parts(cfg, model, tok, warm + requests, resident())
    s_edit, where = stored_speed(cfg)
    save = checkpoint(rows)
    wrote = disk(cfg, save_every, save, s_edit)
    print(
        f"memory plan: {cfg['method']} on {cfg['model']} in {cfg['dtype']} on {cfg['device']}, "
        f"{len(cfg['layers'])} edited layers, {cfg['batch']} edits per step (up to {M} answer "
        f"tokens, chunks of {CHUNK} rows up to {T} tokens: {whose})"
    )
    for part, b, phase in rows:
        print(f"  {b / GB:8.2f} GB  {phase:8s}  {part}")
    print(
        f"  one checkpoint (editor_state.pt): {save / GB:.2f} GB; the disk holds up to two at once "
        f"(the new one is written beside the old, then renamed): {2 * save / GB:.2f} GB"
    )
    print(
        f"  saves over the run (--save-every {save_every}): "
        + (
            "depend on the measured step time"
            if wrote is None
            else f"{wrote[0]}, {wrote[1] / GB:.0f} GB written"
        )
    )
    print("  time per edit: " + (f"{s_edit:.2f} s, {where}" if s_edit else where))
    if cfg["device"] != "cpu":
        host = sum(b for part, b, _ in rows if on_host(part))
        print(f"  host memory beside it: {host / GB:.2f} GB (W_0 and the runtime)")
    print(
        f"peak {peak(rows, cfg['device']) / GB:.1f} GB"
        + (f" on {cfg['device']}" if cfg["device"] != "cpu" else "")
    )
    return 0
