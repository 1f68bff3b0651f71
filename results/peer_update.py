"""The official StableEdit update beside ours at GPT-J's width, timed in one run on the same two
blocks (random weights, bf16; ../shared/peers/stableedit.md, "How the update is computed").

The official code, per edited layer: its statistics merge (the g covariance by torch.cov, float32), one
float32 `torch.linalg.eigh` of Sigma_g per module (the normalizer is shared, the decomposition is not),
Sigma_g^{-1/2} = U diag(lambda^{-1/2}) U^T, the targets, and the ridge in its primal form:
`torch.linalg.solve(K^T K + alpha I, K^T V)`, a d_in x d_in system (d_in = 16384 for GPT-J's fc_out),
then `weight += P^T`. Ours: Editor.update on the same captured K and G (NIW statistics, whitening by
route, the N x N dual ridge, the update applied one layer at a time). Both run on the same K, G, the
same layers, nothing else running; the ratio is of seconds measured here, not a projection.

    python results/peer_update.py        # -> results/whole.json "peer"
"""

import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from data import load  # noqa: E402
from editor import Editor  # noqa: E402
from lab.models import default_tokenizer, random_model  # noqa: E402
from lab.presets import PAPER_CONFIGS  # noqa: E402

LR, ALPHA, EPS = 2e-6, 10.0, 1e-6  # the GPT-J preset's lr and alpha; the official eigenvalue floor


def official_update(W, K, G, mu_k, var_k, mu_g, cov_g):
    """One layer of the official update as its code is written, in float32 (W: fc_out's (d_out, d_in))."""
    K, G = K.float(), G.float()  # (N, d_in), (N, d_out)
    cov = torch.cov(G.T, correction=0) * G.shape[0] + cov_g  # its running M2 merge (float32)
    lam, U = torch.linalg.eigh(cov / G.shape[0])  # one eigh per module
    inv_sqrt = U @ torch.diag(lam.clamp(min=EPS).rsqrt()) @ U.T  # (d_out, d_out)
    k_hat = (K - mu_k) / (var_k.sqrt() + 1.19e-7)  # diagonal keys
    g_hat = (G - mu_g) @ inv_sqrt  # full ZCA of the gradients
    V = -LR * k_hat.pow(2).sum(1, keepdim=True) * g_hat  # (N, d_out)
    A = K.T @ K + ALPHA * torch.eye(K.shape[1])  # (d_in, d_in): the primal system
    P = torch.linalg.solve(A, K.T @ V)  # (d_in, d_out)
    with torch.no_grad():
        W.add_(P.T.to(W.dtype))


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main():
    torch.manual_seed(0)
    model = random_model(PAPER_CONFIGS["gpt-j"], n_layers=2, dtype=torch.bfloat16)
    tok, _ = default_tokenizer("gpt-j")
    layers = [f"transformer.h.{i}.mlp.fc_out" for i in range(2)]
    ed = Editor(model, tok, layers, method="stableedit", lr=LR, alpha=ALPHA)
    requests = load("synthetic", 200)
    ed.edit(requests[:100], apply=False)  # statistics to whiten with
    loss, cap = ed.capture(ed._batch(requests[100:]))
    seconds = {}
    for name in layers:  # the peer first: ours then changes the weights it would read
        K, G = cap[name]
        sk, sg = ed.stats[name]
        W = ed.modules[name].weight
        args = (sk.mean.float(), sk.variance.float(), sg.mean.float(), sg.Psi.float())
        seconds.setdefault("official", []).append(timed(lambda: official_update(W, K, G, *args)))
    report = {}
    seconds["ours"] = timed(lambda: report.update(ed.update(cap, loss, 100)))
    ours = {k: v for k, v in report["seconds"].items() if k != "forward_backward"}
    out = {
        "layers": len(layers),
        "rows": int(cap[layers[0]][0].shape[0]),
        "d_in": int(cap[layers[0]][0].shape[1]),
        "official_s_per_layer": seconds["official"],
        "ours_s": seconds["ours"],
        "ours_phases": ours,
        "ratio_official_over_ours": sum(seconds["official"]) / seconds["ours"],
    }
    store = Path(__file__).resolve().parent / "whole.json"
    data = json.loads(store.read_text()) if store.exists() else {"runs": {}}
    data["peer"] = out
    store.write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
