"""Edit requests, benchmark loaders and the teacher-forcing batch (paper §5.1, Appendix A.1).

Convention (as in the paper's code): a request is a prompt and a new target; the
model reads prompt + " " + target and is scored, and edited, only on the target
tokens under teacher forcing.
"""
from dataclasses import dataclass, field

import torch


class DataError(ValueError):
    """A problem with the user's data: reported as one line, exit code 2."""


@dataclass
class Request:
    """ one edit request: prompt -> target, with its evaluation prompts """
    prompt: str
    target: str
    rephrase: list = field(default_factory=list)     # generalization prompts
    loc_prompt: str = ""                             # locality prompt ...
    loc_answer: str = ""                             # ... and its dataset answer
    subject: str = ""
    personas: list = field(default_factory=list)     # WikiBigEdit personas prompts
    mhop_prompt: str = ""                            # WikiBigEdit multi-hop prompt ...
    mhop_answer: str = ""                            # ... and answer
    label: int = -1                                  # FEVER binary claim label (-1: none)


def tokenize(tokenizer, prompts, targets, max_length=256):
    """Teacher-forcing batch for prompt + " " + target, right-padded.

    Returns input_ids, attention_mask (B, T) and labels (B, T) *aligned with the
    logits*: labels[b, t] is the token that position t must predict, and -100
    everywhere except the positions that predict target tokens. The last target
    token is not fed (nothing after it is scored). Prompts longer than
    max_length - len(target) are cut from the left, keeping the words next to
    the answer; a target that tokenizes to nothing, or alone exceeds
    max_length, is a DataError.
    """
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rows = []
    for i, (p, a) in enumerate(zip(prompts, targets)):
        p_ids = tokenizer(p)["input_ids"]
        a_ids = tokenizer(" " + a.strip(), add_special_tokens=False)["input_ids"]
        if not a_ids:
            raise DataError(f"request {i}: target {a!r} tokenizes to zero tokens")
        if len(a_ids) >= max_length:
            raise DataError(f"request {i}: target is {len(a_ids)} tokens, max_length is {max_length}")
        p_ids = p_ids[-(max_length - len(a_ids)):]
        ids = p_ids + a_ids
        labels = [-100] * (len(p_ids) - 1) + a_ids
        rows.append((ids[:-1], labels))
    T = max(len(ids) for ids, _ in rows)
    B = len(rows)
    input_ids = torch.full((B, T), pad, dtype=torch.long)
    attention_mask = torch.zeros((B, T), dtype=torch.long)
    labels = torch.full((B, T), -100, dtype=torch.long)
    for b, (ids, lab) in enumerate(rows):
        input_ids[b, :len(ids)] = torch.tensor(ids)
        attention_mask[b, :len(ids)] = 1
        labels[b, :len(lab)] = torch.tensor(lab)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
