"""Training of the task heads on precomputed frozen features (seconds to a minute on 2 cores)."""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .heads import NeighbourBlend, SeqHead, SpanHead, TokHead


def _standardize(head, x: np.ndarray) -> None:
    mu = x.mean(0)
    sd = x.std(0) + 1e-4
    head.norm.mu.copy_(torch.from_numpy(mu.reshape(-1).astype(np.float32)))
    head.norm.sd.copy_(torch.from_numpy(sd.reshape(-1).astype(np.float32)))


def train_seq_head(x: np.ndarray, y: np.ndarray, n_out: int, w: np.ndarray | None = None, epochs: int = 40,
                   lr: float = 1e-3, hidden: int = 384, wd: float = 0.05, seed: int = 0,
                   label_smoothing: float = 0.0) -> SeqHead:
    torch.manual_seed(seed)
    head = SeqHead(n_out, hidden=hidden, in_dim=x.shape[1])
    _standardize(head, x)
    X = torch.from_numpy(x.astype(np.float32))
    Y = torch.from_numpy(y)
    W = torch.from_numpy((w if w is not None else np.ones(len(y))).astype(np.float32))

    def batch_loss(i):
        out = head(X[i])
        if n_out == 1:
            loss = nn.functional.binary_cross_entropy_with_logits(out.squeeze(-1), Y[i].float(), reduction="none")
        else:
            loss = nn.functional.cross_entropy(out, Y[i].long(), reduction="none", label_smoothing=label_smoothing)
        return (loss * W[i]).sum() / W[i].sum()

    _fit(head, len(X), batch_loss, epochs=epochs, lr=lr, wd=wd, seed=seed)
    return head


def _fit(head: nn.Module, n: int, batch_loss, *, epochs: int, lr: float, wd: float, seed: int, bs: int = 256) -> None:
    """AdamW with a one-cycle schedule over ``epochs`` shuffled passes of minibatches of ``n`` rows;
    ``batch_loss(indices)`` gives a minibatch's loss. Leaves the head in eval mode."""
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=wd)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * math.ceil(n / bs))
    g = torch.Generator().manual_seed(seed)
    head.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        for s in range(0, n, bs):
            loss = batch_loss(perm[s:s + bs])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    head.eval()


def neighbour_blend(head: torch.nn.Module, x_fit: np.ndarray, x_bank: np.ndarray, y_bank: np.ndarray, n_out: int,
                    dim: int = 256) -> NeighbourBlend:
    """The neighbour vote around a trained head: standardization and principal axes fitted on ``x_fit`` (the
    head's training features), the bank from ``x_bank`` and its labels."""
    blend = NeighbourBlend(head, torch.zeros(x_fit.shape[1], dim), torch.zeros(len(x_bank), dim),
                           torch.from_numpy(y_bank.astype(np.int64)), n_out)
    _standardize(blend, x_fit)
    mu, sd = blend.norm.mu.numpy(), blend.norm.sd.numpy()
    _, _, vt = np.linalg.svd((x_fit - mu) / sd, full_matrices=False)
    proj = vt[:dim].T.astype(np.float32)
    bank = ((x_bank - mu) / sd) @ proj
    bank /= np.linalg.norm(bank, axis=1, keepdims=True).clip(min=1e-12)
    blend.proj.copy_(torch.from_numpy(proj))
    blend.bank_t.copy_(torch.from_numpy(np.ascontiguousarray(bank.T, dtype=np.float32)))
    return blend.eval()


@torch.no_grad()
def predict_seq(head: SeqHead, x: np.ndarray) -> np.ndarray:
    return head(torch.from_numpy(x.astype(np.float32))).numpy()


def fit_temperature(logits: np.ndarray, y: np.ndarray, binary: bool = False) -> float:
    best, bt = 1e18, 1.0
    for t in np.exp(np.linspace(np.log(0.25), np.log(8.0), 80)):
        z = logits / t
        if binary:
            p = 1 / (1 + np.exp(-z))
            nll = -np.mean(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12))
        else:
            z = z - z.max(1, keepdims=True)
            lp = z - np.log(np.exp(z).sum(1, keepdims=True))
            nll = -np.mean(lp[np.arange(len(y)), y])
        if nll < best:
            best, bt = nll, float(t)
    return bt


def train_tok_head(feats: list[np.ndarray], tags: list[np.ndarray], n_tags: int, epochs: int = 12,
                   lr: float = 2e-3, seed: int = 0, o_weight: float = 0.3) -> TokHead:
    torch.manual_seed(seed)
    head = TokHead(n_tags, in_dim=feats[0].shape[1])
    allx = np.concatenate(feats[: 3000]).astype(np.float32)
    _standardize(head, allx)
    del allx
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=0.01)
    bs = 64
    order = np.argsort([len(f) for f in feats])
    batches = [order[s:s + bs] for s in range(0, len(order), bs)]
    steps = epochs * len(batches)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    cw = torch.ones(n_tags)
    cw[0] = o_weight
    rng = np.random.default_rng(seed)
    head.train()
    for _ in range(epochs):
        rng.shuffle(batches)
        for b in batches:
            L = max(len(feats[i]) for i in b)
            X = np.zeros((len(b), L, feats[0].shape[1]), dtype=np.float32)
            Y = np.full((len(b), L), -100, dtype=np.int64)
            for r, i in enumerate(b):
                X[r, : len(feats[i])] = feats[i]
                Y[r, : len(tags[i])] = tags[i]
            out = head(torch.from_numpy(X))
            loss = nn.functional.cross_entropy(out.reshape(-1, n_tags), torch.from_numpy(Y).reshape(-1),
                                               weight=cw, ignore_index=-100)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    head.eval()
    return head


def _pad_bags(bags: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    K = max(len(b) for b in bags)
    x = np.zeros((len(bags), K, bags[0].shape[1]), dtype=np.float16)
    valid = np.zeros((len(bags), K), dtype=bool)
    for i, b in enumerate(bags):
        x[i, : len(b)] = b
        valid[i, : len(b)] = True
    return torch.from_numpy(x), torch.from_numpy(valid)


def train_span_head(bags: list[np.ndarray], y: np.ndarray, epochs: int = 6, hidden: int = 256, lr: float = 1e-3,
                    wd: float = 0.05, seed: int = 0) -> SpanHead:
    """Multiple-instance training: each text is a bag of span features (heads.span_means) and its logit is its
    highest span's, so an attack needs one attack-like span and a benign text none."""
    torch.manual_seed(seed)
    head = SpanHead(hidden=hidden, in_dim=bags[0].shape[1])
    _standardize(head, np.concatenate(bags[:: max(1, len(bags) // 4000)]).astype(np.float32))  # ~4,000 texts
    X, V = _pad_bags(bags)
    Y = torch.from_numpy(y.astype(np.float32))

    def batch_loss(i):
        return nn.functional.binary_cross_entropy_with_logits(
            head.span_logits(X[i].float(), V[i]).max(dim=1).values, Y[i])

    _fit(head, len(X), batch_loss, epochs=epochs, lr=lr, wd=wd, seed=seed)
    return head

