"""Hidden-state drift of prompts the edits are not about (paper App. B.5, Figure 9).

The paper projects the final-layer hidden states of unrelated prompts before and after an edit
stream and draws their 0.95 confidence ellipses: an editor that keeps the representation
manifold leaves the post-edit cloud inside the pre-edit one (Corollary 3.9's bounded updates),
one that collapses moves it away. We take, for each of N prompts, the last prompt token's
final-layer hidden state h (after the model's final norm, what the LM head reads), and report

  mean_cosine      mean_i cos(h_i^pre, h_i^post)                      1 = unchanged
  mean_rel_change  mean_i |h_i^post - h_i^pre| / |h_i^pre|           0 = unchanged
  frechet_rel      Frechet distance between the fitted Gaussians, over tr(Sigma_pre):
                   (|mu_pre - mu_post|^2 + tr(S_pre + S_post - 2 (S_pre^1/2 S_post S_pre^1/2)^1/2)) / tr(S_pre)

The 2-D picture is PCA fitted on the pre-edit states (the paper uses UMAP; umap-learn pulls numba
and llvmlite, so we keep the dependency list short and use the linear projection, which also
keeps distances comparable between the two clouds).

Prompts: sentences of the GLUE files in the data folder (SST-2, then CoLA), else the stream's
locality prompts.
"""

import json
from pathlib import Path

import torch

from capture import DataError, pad_id
from data import data_dir as find_data_dir

CHI2_2_95 = 5.991  # 0.95 quantile of chi-square with 2 degrees of freedom


def shift_prompts(n, data_dir=None, fallback=()):
    """Up to n distinct prompts unrelated to the edits (at least 3: a covariance needs them)."""
    root = find_data_dir(data_dir)
    out = []
    for task in ("sst2", "cola") if root else ():
        path = Path(root) / "glue" / f"{task}.json"
        if path.is_file():
            out += [r["sentence"].strip() for r in json.loads(path.read_text())]
    out = list(dict.fromkeys(p for p in out + list(fallback) if p))[:n]
    if len(out) < 3:
        raise DataError(
            f"--hidden-shift: {len(out)} unrelated prompts found (no GLUE files in the data folder "
            "and few locality prompts); need at least 3"
        )
    return out


@torch.no_grad()
def last_hidden(model, tokenizer, prompts, batch_size=32):
    """(N, d) float64: each prompt's final-layer hidden state at its last token."""
    device, pad = model.get_input_embeddings().weight.device, pad_id(tokenizer)
    ids = tokenizer(list(prompts))["input_ids"]
    rows = []
    for s in range(0, len(ids), batch_size):
        chunk = ids[s : s + batch_size]
        T = max(map(len, chunk))
        x = torch.tensor([i + [pad] * (T - len(i)) for i in chunk], device=device)
        mask = torch.tensor([[1] * len(i) + [0] * (T - len(i)) for i in chunk], device=device)
        h = model.base_model(
            input_ids=x, attention_mask=mask, use_cache=False
        ).last_hidden_state  # (B, T, d)
        last = torch.tensor([len(i) - 1 for i in chunk], device=h.device)
        rows.append(h[torch.arange(len(chunk), device=h.device), last].double().cpu())
    return torch.cat(rows)


def _sqrtm(S):
    lam, U = torch.linalg.eigh(S)
    return (U * lam.clamp_min(0).sqrt()) @ U.T


def shift_stats(H0, H1):
    """Scalar shift figures between pre (H0) and post (H1) states, both (N, d), rows paired."""
    cos = torch.nn.functional.cosine_similarity(H0, H1, dim=1)
    rel = (H1 - H0).norm(dim=1) / H0.norm(dim=1)
    mu0, mu1 = H0.mean(0), H1.mean(0)
    S0, S1 = torch.cov(H0.T), torch.cov(H1.T)
    r0 = _sqrtm(S0)
    fd = (mu0 - mu1).pow(2).sum() + torch.trace(S0 + S1 - 2 * _sqrtm(r0 @ S1 @ r0))
    return {
        "n": H0.shape[0],
        "mean_cosine": cos.mean().item(),
        "mean_rel_change": rel.mean().item(),
        "frechet_rel": (fd / torch.trace(S0)).item(),
    }


def plot_shift(path, H0, H1, title=""):
    """PCA (fitted on H0) scatter of both clouds with their 0.95 confidence ellipses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lab.outputs import atomic_write

    mu = H0.mean(0)
    P = torch.linalg.eigh(torch.cov(H0.T))[1][:, -2:].flip(1)  # (d, 2) top-2 directions
    fig, ax = plt.subplots(figsize=(5.5, 5))
    t = torch.linspace(0, 2 * torch.pi, 200, dtype=torch.float64)
    circle = torch.stack([t.cos(), t.sin()], 1) * CHI2_2_95**0.5  # (200, 2)
    for H, label, color in ((H0, "pre-edit", "tab:blue"), (H1, "post-edit", "tab:red")):
        Z = (H - mu) @ P  # (N, 2)
        ax.scatter(Z[:, 0], Z[:, 1], s=4, alpha=0.35, color=color, label=label)
        c = Z.mean(0)
        ell = c + circle @ _sqrtm(torch.cov(Z.T))
        ax.plot(ell[:, 0], ell[:, 1], color=color, lw=1.5)
    ax.set(xlabel="PC 1 (pre-edit)", ylabel="PC 2 (pre-edit)", title=title)
    ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)


if __name__ == "__main__":
    torch.manual_seed(0)
    H0 = (
        torch.randn(1000, 16, dtype=torch.float64) * torch.linspace(0.5, 2, 16, dtype=torch.float64)
        + 3
    )
    same, moved = shift_stats(H0, H0.clone()), shift_stats(H0, H0 + 0.5)
    print(
        f"unchanged states: cosine {same['mean_cosine']:.3f}, Frechet/tr {same['frechet_rel']:.1e}; "
        f"every state moved by 0.5 per dimension: Frechet/tr {moved['frechet_rel']:.3f} "
        f"(= 16 * 0.25 / tr(Sigma) = {16 * 0.25 / torch.cov(H0.T).trace().item():.3f})"
    )
