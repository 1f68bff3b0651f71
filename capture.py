"""Step 1 of an editing step: one forward + backward that catches k and g (paper §2.2, Algorithm 1).

At every edited linear layer the editor needs, at each position that predicts an answer token, the
layer's input k (d_in) and the gradient g of the loss w.r.t. the layer's output (d_out). Forward
hooks keep k and the output tensors; one autograd.grad over those outputs gives g. The model's
parameters are frozen (Editor does that), so the backward starts at the lowest edited layer and
builds no weight gradients.

The loss, and why: L = mean_b mean_{j in b} nll_bj -- each request is one fact and the metrics
average per request, so each weighs the same whatever its answer length. With groups=[10, 10, ...]
(the official codes): L = sum_g mean_{tokens j of mini-batch g} nll_j, the sum of the losses of
separate mini-batch backward passes.
"""

import torch
import torch.nn.functional as F

# requests per forward + backward inside one step: the same K and G as one pass over the step (bit
# for bit), about half its peak memory at the paper's 100 edits per step (results/bench.py,
# results/capture_chunks.py: speed within noise)
CHUNK = 25


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


def loss_weights(mask, groups=None):
    """(B, T) weight of each token's nll in L (the module's docstring), from the answer mask (B, T)."""
    if groups is None:
        n_ans = mask.sum(1, keepdim=True).expand_as(mask)  # (B, T)
        return 1.0 / (n_ans * mask.shape[0])
    tokens = torch.stack([m.sum() for m in mask.split(groups)])  # (n_groups,)
    # (B, T)
    return (
        torch.repeat_interleave(1.0 / tokens, torch.tensor(groups, device=tokens.device))
        .unsqueeze(1)
        .expand_as(mask)
    )


def forward_backward(model, modules, batch, groups=None, every_position=False):
    """(L as a float, {layer: (K (M, d_in), G (M, d_out))}) for a teacher-forcing batch (data.tokenize).
    K and G are taken at the answer positions, or at every attended position with every_position
    (plain fine-tuning's dL/dW = sum_t k_t^T g_t: the prompt positions feed the answer through
    attention)."""
    mask = batch["labels"] != -100  # (B, T)
    at = batch["attention_mask"].bool() if every_position else mask
    w = loss_weights(mask, groups)
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
