"""Step 1 of an editing step: one forward + backward that catches k and g (paper §2.2, Algorithm 1).

At every edited linear layer the editor needs, at each position that predicts an answer token, the
layer's input k (d_in) and the gradient g of the loss w.r.t. the layer's output (d_out). Forward
hooks keep k and the output tensors; one autograd.grad over those outputs gives g. The model's
parameters are frozen (Editor does that), so the backward starts at the lowest edited layer and
builds no weight gradients.

The loss, and why: L = mean_b mean_{j in b} nll_bj -- each request is one fact and the metrics
average per request, so each weighs the same whatever its answer length. A caller may pass other
per-token weights (lab/official.py: the official codes' mini-batch means).

The batch itself is built here too (tokenize): prompt + " " + answer, with labels only at the
positions that predict answer tokens.
"""

import torch
import torch.nn.functional as F

# requests per forward + backward inside one step: the same K and G as one pass over the step (bit
# for bit), about half its peak memory at the paper's 100 edits per step (results/bench.py,
# its speed within noise)
CHUNK = 25


# The two errors a user reads as one line with exit code 2. They live in the lowest module of the
# core because the core raises them (tokenize below, editor.linear_layers) and the core imports only
# the core; the laboratory (lab/) raises them too, for files, flags and models.
class DataError(ValueError):
    """A problem with the user's data, files or flags (here: a request that cannot make a batch)."""


class ModelError(ValueError):
    """The model cannot be loaded or a layer name does not fit it."""


# ---------------------------------------------------------------- the teacher-forcing batch


def pad_id(tokenizer):
    """The id that fills padded positions (never attended): the pad token, else end-of-sequence."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def tokenize(tokenizer, prompts, targets, max_length=256):
    """Teacher-forcing batch for prompt + " " + target, right-padded.

    Returns input_ids, attention_mask (B, T) and labels (B, T) *aligned with the
    logits*: labels[b, t] is the token that position t must predict, and -100
    everywhere except the positions that predict target tokens. The last target
    token is not fed (nothing after it is scored). Prompts longer than
    max_length - len(target) are cut from the left, keeping the words next to
    the answer; a target (or prompt) that tokenizes to nothing, or a target
    that alone exceeds max_length, is a DataError.
    """
    pad = pad_id(tokenizer)
    prompts, targets = list(prompts), list(targets)
    P = tokenizer(prompts)["input_ids"]  # one call per batch: fast tokenizers batch in Rust
    # a target that already starts with a space carries its own separator and is kept verbatim
    # (lab/official.py's verbatim: the official codes' " " + target); any other is stripped and joined by one space
    A = tokenizer(
        [a if a.startswith(" ") else " " + a.strip() for a in targets], add_special_tokens=False
    )["input_ids"]
    rows = []
    for i, (p_ids, a_ids) in enumerate(zip(P, A)):
        if not targets[i].strip() or not a_ids:
            raise DataError(f"request {i}: target {targets[i]!r} tokenizes to zero tokens")
        if not p_ids:
            raise DataError(f"request {i}: prompt {prompts[i]!r} tokenizes to zero tokens")
        if len(a_ids) >= max_length:
            raise DataError(
                f"request {i}: target is {len(a_ids)} tokens, max_length is {max_length}"
            )
        p_ids = p_ids[-(max_length - len(a_ids)) :]
        ids = p_ids + a_ids
        labels = [-100] * (len(p_ids) - 1) + a_ids
        rows.append((ids[:-1], labels))
    T = max(len(ids) for ids, _ in rows)
    B = len(rows)
    input_ids = torch.full((B, T), pad, dtype=torch.long)
    attention_mask = torch.zeros((B, T), dtype=torch.long)
    labels = torch.full((B, T), -100, dtype=torch.long)
    for b, (ids, lab) in enumerate(rows):
        input_ids[b, : len(ids)] = torch.tensor(ids)
        attention_mask[b, : len(ids)] = 1
        labels[b, : len(lab)] = torch.tensor(lab)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


# ---------------------------------------------------------------- one forward + backward


def masked(x, mask):
    """The rows of x where mask is true, the mask moved to x's device first. The one place where an
    answer-position mask (built on the embedding device) indexes an activation, gradient or label
    that, under device_map="auto", lives on another device: capture.py and evaluate.py index only here."""
    return x[mask.to(x.device)]


def answer_logits(model, batch):
    """Logits (M, vocab) at the M positions whose labels are not -100 (row-major order).

    Runs the backbone once and applies the LM head only where a target token is
    predicted: the full (B, T, vocab) tensor is never built, which is most of the
    cost of a 49k-vocabulary head on short prompts.
    """
    mask = batch["labels"] != -100  # (B, T)
    h = model.base_model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
    ).last_hidden_state  # (B, T, d)
    logits = model.get_output_embeddings()(masked(h, mask))  # (M, vocab)
    cap = getattr(model.config.get_text_config(), "final_logit_softcapping", None)
    if cap:  # Gemma-2/3 style soft cap
        logits = torch.tanh(logits / cap) * cap
    return logits


def loss_weights(mask):
    """(B, T) weight of each token's nll in L = mean_b mean_{j in b} nll_bj, from the answer mask (B, T)."""
    n_ans = mask.sum(1, keepdim=True).expand_as(mask)  # (B, T)
    return 1.0 / (n_ans * mask.shape[0])


def forward_backward(model, modules, batch, every_position=False, weights=None):
    """(L as a float, {layer: (K (M, d_in), G (M, d_out))}) for a teacher-forcing batch (tokenize).
    K and G are taken at the answer positions, or at every attended position with every_position
    (plain fine-tuning's dL/dW = sum_t k_t^T g_t: the prompt positions feed the answer through
    attention). weights (B, T): each token's weight in L, loss_weights(mask) when None."""
    mask = batch["labels"] != -100  # (B, T)
    at = batch["attention_mask"].bool() if every_position else mask
    w = loss_weights(mask) if weights is None else weights
    loss, caps = 0.0, []
    # Requests are separate sequences, so L is a sum over rows and a row's g depends on its own
    # forward only: rows in chunks give the same K and G while the activations kept for the backward
    # (every layer above the lowest edited one) are those of one chunk, not of the whole step.
    # Each chunk is cut to its own longest sequence: right padding is never attended.
    for lo in range(0, mask.shape[0], CHUNK):
        rows = slice(lo, lo + CHUNK)
        T = int(batch["attention_mask"][rows].sum(1).max())
        part = {k: v[rows, :T] for k, v in batch.items()}
        l, cap = _rows(model, modules, part, at[rows, :T], w[rows, :T])
        loss, caps = loss + l, caps + [cap]
    return loss.item(), {
        n: tuple(torch.cat([c[n][j] for c in caps]) for j in (0, 1)) for n in modules
    }


def _rows(model, modules, batch, at, w):
    """One forward + backward of some rows: (their loss term sum of w * nll (a tensor), {layer: (K, G)})."""
    mask = batch["labels"] != -100
    keys, outs = {}, {}

    def hook(name):
        def fn(mod, inp, out):
            keys[name] = masked(inp[0], at).detach()
            if not out.requires_grad:  # lowest edited layer: the graph starts here
                out.requires_grad_()
            outs[name] = out

        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in modules.items()]
    try:
        with torch.enable_grad():
            logits = answer_logits(model, batch)  # (M, vocab)
            labels = masked(batch["labels"], mask).to(logits.device)  # (M,)
            nll = F.cross_entropy(logits.float(), labels, reduction="none")  # (M,)
            loss = (nll * masked(w, mask).to(nll.device)).sum()
            grads = torch.autograd.grad(loss, [outs[n] for n in modules])
    finally:
        for h in handles:
            h.remove()
    return loss.detach(), {n: (keys[n], masked(g, at).detach()) for n, g in zip(modules, grads)}


if __name__ == "__main__":
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=64,
            hidden_size=32,
            intermediate_size=48,
            num_hidden_layers=3,
            num_attention_heads=4,
            num_key_value_heads=4,
        )
    ).requires_grad_(False)
    modules = {f"L{i}": model.model.layers[i].mlp.down_proj for i in (1, 2)}
    B, T = 10, 9
    ids = torch.randint(1, 64, (B, T))
    lengths = torch.randint(4, T + 1, (B,))
    attn = (torch.arange(T) < lengths[:, None]).long()  # right-padded rows
    labels = torch.where(torch.arange(T) >= lengths[:, None] - 2, ids, -100).masked_fill(
        attn == 0, -100
    )
    batch = {"input_ids": ids, "attention_mask": attn, "labels": labels}
    CHUNK = 3  # chunks of 3 rows, each cut to its own longest
    chunked = forward_backward(model, modules, batch)
    CHUNK = B  # one pass over the whole batch
    whole = forward_backward(model, modules, batch)
    same = all(
        torch.allclose(a, b, atol=1e-6) for n in modules for a, b in zip(chunked[1][n], whole[1][n])
    )
    print(
        f"{int((labels != -100).sum())} answer positions; K, G of layers {list(modules)}: "
        f"{tuple(chunked[1]['L1'][0].shape)}, {tuple(chunked[1]['L1'][1].shape)}; "
        f"loss {chunked[0]:.4f} = {whole[0]:.4f} in one pass: {same and abs(chunked[0] - whole[0]) < 1e-6}"
    )
