"""Edit metrics: Efficacy, Generalization, Specificity, retain (paper Appendix A.1), general capability (§5.3).

All token-level metrics are teacher-forced top-1 accuracies over the target tokens.
"""
import torch


def answer_logits(model, batch):
    """Logits (M, vocab) at the M positions whose labels are not -100 (row-major order).

    Runs the backbone once and applies the LM head only where a target token is
    predicted: the full (B, T, vocab) tensor is never built, which is most of the
    cost of a 49k-vocabulary head on short prompts.
    """
    mask = batch["labels"] != -100                                          # (B, T)
    h = model.base_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                         use_cache=False).last_hidden_state                 # (B, T, d)
    logits = model.get_output_embeddings()(h[mask])                        # (M, vocab)
    cap = getattr(model.config.get_text_config(), "final_logit_softcapping", None)
    if cap:                                                                 # Gemma-2/3 style soft cap
        logits = torch.tanh(logits / cap) * cap
    return logits
