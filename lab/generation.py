"""Generation-based metrics: exact match of greedy answers, and fluency (ROME's n-gram entropy).

The paper scores edits by teacher-forced token accuracy (Appendix A.1, evaluate.py): the model
reads the prompt *and the gold answer so far* and is right at each answer token whose top-1
prediction is the gold one, so a 3-token answer with one miss scores 67. What a user means by
"the edit worked" is stricter, and the three numbers differ on purpose:

  token accuracy (efficacy, ...)  teacher-forced, per answer token, averaged: partial credit
  exact match (efficacy_em, ...)  the model, given only the prompt, greedily generates the target's
                                  tokens first: all or nothing, and its own earlier tokens feed it
  fluency                         ROME's n-gram entropy (Meng et al. 2022) of free greedy
                                  generations from prompts unrelated to the edits, in bits; a model
                                  that an edit stream broke repeats itself and its entropy falls

Words for the n-grams are regex tokens (\\w+ or one punctuation mark), where ROME uses nltk's
word_tokenize; generations are greedy (ROME samples), so the figure is deterministic and only its
change from before to after editing is meaningful.
"""

import math
import re
from collections import Counter

import torch

from capture import pad_id, tokenize

WORD = re.compile(r"\w+|[^\w\s]")


@torch.no_grad()
def greedy(model, tokenizer, prompts, max_new_tokens, batch_size=32):
    """Greedy continuations: for each prompt, the list of its first max_new_tokens generated token ids.

    Prompts are tokenized as the teacher-forced batches are (capture.tokenize), left-padded, and
    batched by length so padding stays small; the KV cache makes each new token one short forward."""
    device, pad = model.get_input_embeddings().weight.device, pad_id(tokenizer)
    ids = tokenizer(list(prompts))["input_ids"]
    order = sorted(range(len(ids)), key=lambda j: -len(ids[j]))
    out = [None] * len(ids)
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        T = max(len(ids[j]) for j in idx)
        input_ids = torch.tensor([[pad] * (T - len(ids[j])) + ids[j] for j in idx], device=device)
        mask = torch.tensor(
            [[0] * (T - len(ids[j])) + [1] * len(ids[j]) for j in idx], device=device
        )
        past, new = None, []
        pos = (mask.cumsum(1) - 1).clamp_min(0)  # left padding: positions from 0
        for _ in range(max_new_tokens):
            o = model(
                input_ids=input_ids,
                attention_mask=mask,
                position_ids=pos,
                past_key_values=past,
                use_cache=True,
            )
            past = o.past_key_values
            nxt = o.logits[:, -1].argmax(-1, keepdim=True)  # (B, 1)
            new.append(nxt)
            input_ids, pos = nxt, pos[:, -1:] + 1
            mask = torch.cat([mask, torch.ones_like(nxt)], 1)
        gen = torch.cat(new, 1).cpu()  # (B, max_new_tokens)
        for j, g in zip(idx, gen.tolist()):
            out[j] = g
    return out


def exact_match(model, tokenizer, pairs, batch_size=32):
    """Per (prompt, target) pair: 100 if greedy generation from the prompt starts with the target's
    tokens (the same tokens the teacher-forced metrics score), else 0."""
    if not pairs:
        return []
    gold = []
    for p, a in pairs:
        lab = tokenize(tokenizer, [p], [a])["labels"][0]
        gold.append(lab[lab != -100].tolist())
    gen = greedy(model, tokenizer, [p for p, _ in pairs], max(map(len, gold)), batch_size)
    return [100.0 * (g[: len(t)] == t) for g, t in zip(gen, gold)]


def ngram_entropy(text, ns=(2, 3), weights=(2 / 3, 4 / 3)):
    """ROME's compute_n_gram_entropy: the mean over n of weight_n * entropy (bits) of the n-gram
    frequencies of one text."""
    words = WORD.findall(text)
    hs = []
    for n, w in zip(ns, weights):
        counts = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
        total = sum(counts.values())
        hs.append(
            w * -sum(c / total * math.log2(c / total) for c in counts.values()) if total else 0.0
        )
    return sum(hs) / len(hs)


def fluency(model, tokenizer, prompts, max_new_tokens=48, batch_size=32):
    """Mean n-gram entropy of the greedy continuations of prompts."""
    gen = greedy(model, tokenizer, prompts, max_new_tokens, batch_size)
    return sum(ngram_entropy(tokenizer.decode(g, skip_special_tokens=True)) for g in gen) / len(gen)


def generation_metrics(model, tokenizer, requests, free_prompts, batch_size=32):
    """{efficacy_em, generalization_em (mean over each request's rephrases, then requests), fluency}."""
    pairs = [(r.prompt, r.target) for r in requests]
    reph = [(i, (q, r.target)) for i, r in enumerate(requests) for q in r.rephrase]
    em = exact_match(model, tokenizer, pairs + [p for _, p in reph], batch_size)
    out = {"efficacy_em": sum(em[: len(pairs)]) / len(pairs)}
    if reph:
        per = {}
        for (i, _), v in zip(reph, em[len(pairs) :]):
            per.setdefault(i, []).append(v)
        out["generalization_em"] = sum(sum(v) / len(v) for v in per.values()) / len(per)
    if free_prompts:
        out["fluency"] = fluency(model, tokenizer, free_prompts, batch_size=batch_size)
    return out


if __name__ == "__main__":
    from data import load
    from lab.models import load_model

    print(
        f"n-gram entropy of a varied sentence {ngram_entropy('the cat sat on the mat and then it slept'):.2f} "
        f"bits > of a loop {ngram_entropy('the cat the cat the cat the cat the cat the cat'):.2f}"
    )
    model, tok, _ = load_model("smollm2-135m")
    reqs = load("synthetic", 20)
    free = [p for r in reqs for p, _ in r.locality.get("", [])][:20]
    print("unedited SmolLM2 on 20 synthetic requests:", generation_metrics(model, tok, reqs, free))
