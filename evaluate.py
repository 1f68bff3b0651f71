"""Edit metrics: Efficacy, Generalization, Specificity, retain (paper Appendix A.1), general capability (§5.3).

All token-level metrics are teacher-forced top-1 accuracies over the answer
tokens, first averaged over one prompt's answer tokens, then over a request's
prompts, then over requests. Every figure is a percentage (0-100).

  efficacy          target after the edit prompt
  generalization    target after each rephrase prompt
  specificity       each locality probe's own answer after its prompt, averaged over all the
                    request's probes (MedCF: the mean of its four locality_<name> metrics)
  locality_<name>   the same, for one named probe (MedCF: locality_target, locality_mapping,
                    locality_struc, locality_tokenSem; EasyEdit: the keys of `locality`)
  retain            share of all the request's locality answer positions where the model's top-1
                    token equals the pre-edit model's (pass `reference=locality_tokens(model, tok,
                    requests)` computed once before editing): unlike specificity it does not reward
                    or punish what the unedited model already got wrong.
  personas          target after each WikiBigEdit personas prompt         (only when present)
  reasoning         multi-hop answer after the WikiBigEdit mhop prompt    (only when present)
  portability       each EasyEdit portability probe's answer after its prompt (only when present)

    ref = locality_tokens(model, tok, requests)      # before editing
    ... edit ...
    m = edit_metrics(model, tok, requests, reference=ref)   # m["efficacy"], m["per_request"]["efficacy"][i]
"""

import json
import time
from pathlib import Path

import torch
from tqdm import tqdm

from capture import DataError, answer_logits, masked, tokenize
from data import data_dir as find_data_dir
from lab.intervals import matched


@torch.no_grad()
def top1(model, tokenizer, pairs, batch_size=32, progress=False, desc="eval"):
    """For each (prompt, answer) pair: (predicted, gold) token-id lists over the answer tokens.

    Pairs are sorted by token length so a batch is nearly free of padding, and
    each batch goes to the device of the input embeddings.
    """
    if not pairs:
        return []
    device = model.get_input_embeddings().weight.device
    lengths = [len(ids) for ids in tokenizer([p + " " + a for p, a in pairs])["input_ids"]]
    # longest first: memory peaks early
    order = sorted(range(len(pairs)), key=lambda j: -lengths[j])
    out = [None] * len(pairs)
    for s in tqdm(range(0, len(order), batch_size), desc=desc, disable=not progress, leave=False):
        idx = order[s : s + batch_size]
        batch = tokenize(tokenizer, [pairs[j][0] for j in idx], [pairs[j][1] for j in idx])
        batch = {k: v.to(device) for k, v in batch.items()}
        pred = answer_logits(model, batch).argmax(-1).cpu()  # (M,)
        gold = masked(batch["labels"], batch["labels"] != -100).cpu()  # (M,), same row-major order
        counts = (batch["labels"] != -100).sum(1).tolist()  # answer tokens per row
        for j, p, g in zip(idx, pred.split(counts), gold.split(counts)):
            out[j] = (p.tolist(), g.tolist())
    return out


def _prompt_sets(r):
    """metric -> list of (prompt, answer) for one request; absent parts give empty lists."""
    return {
        "efficacy": [(r.prompt, r.target)],
        "generalization": [(p, r.target) for p in r.rephrase],
        "specificity": [
            pair for pairs in r.locality.values() for pair in pairs
        ],  # probe after probe
        **{f"locality_{name}": pairs for name, pairs in r.locality.items() if name},
        "personas": [(p, r.target) for p in r.personas],
        "reasoning": r.reasoning,
        "portability": r.portability,
    }


def _mean(xs):
    return sum(xs) / len(xs)


def mean_se(xs):
    """(mean, standard error) of per-request scores, per-seed figures or paired differences (None and
    NaN dropped; SE = sd / sqrt(n), inf below two values): the one error bar of every comparison here."""
    xs = [x for x in xs if x is not None and x == x]
    if not xs:
        return float("nan"), float("nan")
    m = _mean(xs)
    return m, (sum((x - m) ** 2 for x in xs) / (len(xs) - 1) / len(xs)) ** 0.5 if len(
        xs
    ) > 1 else float("inf")


def paired(base, other, key):
    """mean_se of other - base over the requests both scored: two results.json `per_request` blocks,
    matched by stream index (lab.intervals.matched)."""
    b, o = matched(base, other, key)
    return mean_se([y - x for x, y in zip(b, o)])


def locality_tokens(model, tokenizer, requests, batch_size=32, progress=False):
    """Per request, the model's top-1 token ids at all its locality answer positions, probe after probe."""
    sets = [_prompt_sets(r)["specificity"] for r in requests]
    pairs = sorted({p for s in sets for p in s})
    res = dict(zip(pairs, top1(model, tokenizer, pairs, batch_size, progress, "locality")))
    return [[t for p in s for t in res[p][0]] for s in sets]


def edit_metrics(model, tokenizer, requests, batch_size=32, reference=None, progress=True):
    """Percentages {metric: mean over requests} plus "per_request": {metric: [value or None]}.

    Each distinct (prompt, answer) pair is run once, however many requests share it.
    """
    if not requests:
        raise ValueError("edit_metrics needs at least one request")
    sets = [_prompt_sets(r) for r in requests]
    pairs = sorted({p for s in sets for ps in s.values() for p in ps})
    res = dict(zip(pairs, top1(model, tokenizer, pairs, batch_size, progress, "metrics")))
    acc = {p: _mean([a == b for a, b in zip(*res[p])]) for p in pairs}  # token accuracy of one pair
    keys = dict.fromkeys(k for s in sets for k in s)  # MedCF's probe names, in order
    per = {
        k: [100 * _mean([acc[p] for p in s[k]]) if s.get(k) else None for s in sets] for k in keys
    }
    if reference is not None:
        if len(reference) != len(requests):
            raise ValueError(f"reference has {len(reference)} entries for {len(requests)} requests")
        per["retain"] = []
        for s, ref in zip(sets, reference):
            pred = [t for p in s["specificity"] for t in res[p][0]]
            if len(pred) != len(ref):
                raise ValueError(
                    "reference tokens do not match the locality answers: was it computed "
                    "with the same tokenizer and requests?"
                )
            per["retain"].append(100 * _mean([a == b for a, b in zip(pred, ref)]) if ref else None)
    per = {k: vals for k, vals in per.items() if any(v is not None for v in vals)}
    out = {k: _mean([v for v in vals if v is not None]) for k, vals in per.items()}
    out["per_request"] = per
    return out


# ---------------------------------------------------------------- general capability (§5.3)

# task -> (prompt format, (label word when label is true, ... when false), true label value)
GLUE = {
    "sst2": (
        "Review: {sentence}\nSentiment (positive or negative):",
        (" positive", " negative"),
        1,
    ),
    "mrpc": (
        "Sentence 1: {sentence1}\nSentence 2: {sentence2}\nDo both sentences mean the same thing? "
        "Answer yes or no:",
        (" yes", " no"),
        1,
    ),
    "rte": (
        '{sentence1}\nQuestion: does this imply that "{sentence2}"? Answer yes or no:',
        (" yes", " no"),
        0,
    ),
    "cola": (
        "Sentence: {sentence}\nIs this sentence grammatically correct? Answer yes or no:",
        (" yes", " no"),
        1,
    ),
    "nli": (
        '{sentence1}\nQuestion: does this imply that "{sentence2}"? Answer yes or no:',
        (" yes", " no"),
        "entailment",
    ),
}


@torch.no_grad()
def glue_scores(
    model,
    tokenizer,
    data_dir=None,
    n=200,
    tasks=("sst2", "mrpc", "rte", "cola", "nli"),
    batch_size=16,
    progress=False,
):
    """Accuracy (%) per task on the first n examples of <data>/glue/<task>.json.

    Zero-shot label-word scoring: the model reads the task's prompt (formats in
    GLUE above; rte/nli label 0 / "entailment" means yes) and the answer is the
    label word whose first token has the larger next-token logit, e.g.
    " positive" vs " negative", " yes" vs " no". A small model scores near
    chance; the point is the difference before vs after editing.
    """
    root = find_data_dir(data_dir)
    device = model.get_input_embeddings().weight.device
    scores = {}
    for task in tasks:
        path = Path(root or ".") / "glue" / f"{task}.json"
        if task not in GLUE or not path.is_file():
            raise DataError(
                f"glue task {task!r}: need one of {', '.join(GLUE)} and the file {path}"
            )
        fmt, words, yes = GLUE[task]
        rows = json.loads(path.read_text())[:n]
        ids = [
            tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in words
        ]  # first token of each word
        correct = 0
        for s in tqdm(
            range(0, len(rows), batch_size), desc=task, disable=not progress, leave=False
        ):
            chunk = rows[s : s + batch_size]
            batch = tokenize(tokenizer, [fmt.format(**r) for r in chunk], [words[0]] * len(chunk))
            batch = {k: v.to(device) for k, v in batch.items()}
            k = (batch["labels"][0] != -100).sum().item()  # tokens of the label word
            logits = answer_logits(model, batch).view(len(chunk), k, -1)[
                :, 0
            ]  # (B, vocab) after the prompt
            says_yes = (logits[:, ids[0]] > logits[:, ids[1]]).tolist()
            correct += sum(y == (r["label"] == yes) for y, r in zip(says_yes, chunk))
        scores[task] = 100 * correct / len(rows)
    return scores


# ---------------------------------------------------------------- speed


@torch.no_grad()
def bench_speed(model, tokenizer, requests, batch_size=32, repeats=3):
    """Sequences/s of the evaluator vs a bare model(input_ids, attention_mask) forward on the same pairs.

    The two alternate and each keeps its best of `repeats` runs, so a machine
    that is busy with other work slows both alike instead of whichever ran last.
    """
    pairs = sorted({p for r in requests for ps in _prompt_sets(r).values() for p in ps})
    device = model.get_input_embeddings().weight.device

    def bare():  # file-order batches, full (B, T, vocab) logits
        for s in range(0, len(pairs), batch_size):
            b = tokenize(
                tokenizer,
                [p for p, _ in pairs[s : s + batch_size]],
                [a for _, a in pairs[s : s + batch_size]],
            )
            model(
                input_ids=b["input_ids"].to(device),
                attention_mask=b["attention_mask"].to(device),
                use_cache=False,
            )

    top1(model, tokenizer, pairs[:batch_size], batch_size)  # warm-up: thread pools, allocator
    best = {"evaluator": float("inf"), "bare_forward": float("inf")}
    for _ in range(repeats):
        for name, run in (
            ("evaluator", lambda: top1(model, tokenizer, pairs, batch_size)),
            ("bare_forward", bare),
        ):
            t0 = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {"sequences": len(pairs), **{k: len(pairs) / t for k, t in best.items()}}


if __name__ == "__main__":
    import argparse

    from data import load
    from lab.models import load_model

    ap = argparse.ArgumentParser(description="pre-edit metrics of a model on an edit stream")
    ap.add_argument("--model", default="smollm2-135m", help="preset name, hub id or local path")
    ap.add_argument("--data", default="synthetic")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--glue", type=int, default=0, help="examples per GLUE task (0: skip)")
    ap.add_argument(
        "--speed",
        type=int,
        default=0,
        help="time the evaluator against a bare forward on this many requests",
    )
    args = ap.parse_args()
    model, tok, _ = load_model(args.model)
    reqs = load(args.data, args.n)
    t0 = time.perf_counter()
    ref = locality_tokens(model, tok, reqs)
    m = edit_metrics(model, tok, reqs, reference=ref)
    print(
        f"{args.data}, {len(reqs)} requests, unedited model ({time.perf_counter() - t0:.0f} s): "
        + ", ".join(f"{k} {v:.1f}" for k, v in m.items() if k != "per_request")
    )
    print("retain of the unedited model against itself must be 100:", m["retain"])
    if args.glue:
        print(
            "GLUE accuracy (%):",
            {k: round(v, 1) for k, v in glue_scores(model, tok, n=args.glue).items()},
        )
    if args.speed:
        s = bench_speed(model, tok, reqs[: args.speed])
        print(
            f"{s['sequences']} sequences: evaluator {s['evaluator']:.1f} seq/s, "
            f"bare forward {s['bare_forward']:.1f} seq/s ({s['evaluator'] / s['bare_forward']:.2f}x)"
        )
