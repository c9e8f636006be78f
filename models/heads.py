"""Task heads on frozen MiniLM features, and the full single-pass signal graph that is exported to ONNX."""
from __future__ import annotations

import copy

import torch
from torch import nn

from .bert import SEQ_DIM, TOK_DIM, MiniLM, masked_mean, seq_features, tok_features


class Standardize(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mu", torch.zeros(dim))
        self.register_buffer("sd", torch.ones(dim))

    def forward(self, x):
        return (x - self.mu) / self.sd


class SeqHead(nn.Module):
    def __init__(self, n_out: int, hidden: int = 384, dropout: float = 0.2, in_dim: int = SEQ_DIM) -> None:
        super().__init__()
        self.norm = Standardize(in_dim)
        self.drop_in = nn.Dropout(0.1)
        self.fc1 = nn.Linear(in_dim, hidden)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, n_out)

    def forward(self, x):
        return self.fc2(self.drop(nn.functional.gelu(self.fc1(self.drop_in(self.norm(x))))))


class Ensemble(nn.Module):
    """Mean logits of heads trained from different seeds: on the calibration split three domain heads reach
    0.881 where single seeds give 0.865-0.876 (seed variance, not capacity: one twice-as-wide head gives 0.870)."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x):
        return torch.stack([m(x) for m in self.members]).mean(0)


class NeighbourBlend(nn.Module):
    """Domain probabilities blended with a vote of the nearest training questions.

    Returns log((1 - alpha) * softmax(head(x)) + alpha * p_knn): log-probabilities, so the runtime's temperature
    and window averaging treat them as logits. p_knn is a softmax over the cosine similarities (temperature
    ``temp``) of the ``k`` nearest training questions, in the standardized feature space projected on its top
    principal components. Exam questions come in families (one textbook's phrasing, one subject's stock
    formulas) that a few neighbours recognise better than a smooth boundary does. The constants were chosen on
    the calibration split among 45 configurations (k 10-50, temperature 0.05-0.1, weight 0.2-1, 7 choices of
    bank and projection); every blend with weight 0.2-0.5 beat the ensemble alone there. The shipped one raised
    a 3-seed ensemble from 0.8797 to 0.8883 (the two halves of that split: +1.7 and +0.0 points); the build's
    own ensemble goes from 0.8768 to 0.8840 there (metrics.json). The bank holds the question-only view
    of the training split (9,868 x 256, int8 in the graph: models/export.py); a lookup is ~3 M multiply-adds
    per row."""

    def __init__(self, head: nn.Module, proj: torch.Tensor, bank: torch.Tensor, bank_labels: torch.Tensor, n_out: int,
                 k: int = 25, temp: float = 0.05, alpha: float = 0.3) -> None:
        super().__init__()
        self.head = head
        self.norm = Standardize(proj.shape[0])                 # fitted like the heads' (train._standardize)
        self.register_buffer("proj", proj)                    # [D, r]
        self.register_buffer("bank_t", bank.t().contiguous())  # [r, N], rows unit-norm
        self.register_buffer("onehot", nn.functional.one_hot(bank_labels, n_out).float())
        self.k, self.temp, self.alpha = k, temp, alpha

    def forward(self, x):
        p_head = torch.softmax(self.head(x), dim=-1)
        z = self.norm(x) @ self.proj
        z = z / z.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        top, idx = torch.topk(z @ self.bank_t, self.k, dim=-1)
        w = torch.softmax(top / self.temp, dim=-1)
        p_knn = (w.unsqueeze(-1) * self.onehot[idx]).sum(1)
        return torch.log((1 - self.alpha) * p_head + self.alpha * p_knn + 1e-6)


class TokHead(nn.Module):
    """Per-token BIO tags from frozen token features. Two residual convolutions (kernel 3, then kernel 3 dilated
    by 2) let a token see three neighbours each side: with one (a single kernel-3 conv) the head typed names
    after "addressed to" / "booking under" as addresses; on the calibration split the wider context raised the
    worst per-type precision/recall from 0.889 to 0.915."""

    def __init__(self, n_tags: int, hidden: int = 128, in_dim: int = TOK_DIM) -> None:
        super().__init__()
        self.norm = Standardize(in_dim)
        self.fc1 = nn.Linear(in_dim, hidden)
        self.conv = nn.Conv1d(hidden, hidden, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(hidden, hidden, kernel_size=3, padding=2, dilation=2)
        self.drop = nn.Dropout(0.1)
        self.fc2 = nn.Linear(hidden, n_tags)

    def forward(self, x):  # [B, S, D]
        h = nn.functional.gelu(self.fc1(self.norm(x)))
        h = h + nn.functional.gelu(self.conv(h.transpose(1, 2)).transpose(1, 2))
        h = h + nn.functional.gelu(self.conv2(h.transpose(1, 2)).transpose(1, 2))
        return self.fc2(self.drop(h))

    def folded(self) -> TokHead:
        """A copy for export with the standardization folded into fc1: W (x - mu) / sd + b is
        (W / sd) x + (b - (W / sd) mu). The per-token Sub and Div over [B, S, 1152] cost 0.7 ms of a 57 ms run of
        five 128-token rows on 2 CPU cores; this head's MatMuls stay fp32 (models/export.py), so its logits move
        by rounding only (4e-7 on random rows)."""
        t = copy.deepcopy(self)
        with torch.no_grad():
            w = t.fc1.weight / t.norm.sd
            t.fc1.bias -= (w * t.norm.mu).sum(1)
            t.fc1.weight.copy_(w)
        t.norm = nn.Identity()
        return t


SPAN_TOKENS, SPAN_STRIDE = 12, 6


def span_means(h: torch.Tensor, mask: torch.Tensor, size: int = SPAN_TOKENS, stride: int = SPAN_STRIDE):
    """Means of ``size`` consecutive content tokens (not [CLS]/[SEP]) every ``stride`` tokens: [B, K, D], and
    which of the K spans hold at least ``stride`` content tokens (or all of a shorter text): [B, K]. Spans are
    counted from the row's start and only content tokens count, so a row padded in a batch gets the spans it gets
    alone.

    One batched MatMul with a [K, S] pooling matrix that already holds the content mask: the same sums as pooling
    the masked [B, S, D] features, without the transposes and copies of that tensor that pooling needs. On 2 CPU
    cores those cost the span head 2.8 ms of a 57 ms run of five 128-token rows (ONNX Runtime profile)."""
    S = h.shape[1]
    pos = torch.arange(S, device=h.device).unsqueeze(0)
    n = mask.sum(1, keepdim=True)
    cm = ((mask > 0) & (pos > 0) & (pos < n - 1)).to(h.dtype)                            # [B, S]
    starts = torch.arange(S // stride + 1, device=h.device).unsqueeze(1) * stride       # [K, 1]
    pool = ((pos >= starts) & (pos < starts + size)).to(h.dtype).unsqueeze(0) * cm.unsqueeze(1)  # [B, K, S]
    cnt = pool.sum(-1)
    spans = (pool @ h) / cnt.clamp(min=1).unsqueeze(-1)
    valid = (cnt > 0) & (cnt >= torch.clamp(n - 2, max=stride))
    return spans, valid


class SpanHead(nn.Module):
    """Jailbreak score of the most attack-like short span of a row (multiple-instance learning: a text is an
    attack when any span is). A window's pooled features are mostly the benign text around a short attack pasted
    into a long prompt; a 12-token span inside the attack is not. Spans of 8, 12, 16 and 32 tokens were compared
    on the calibration split (padded attacks caught at 1% of long benign prompts flagged): the shorter three were
    close, 32 was clearly worse."""

    def __init__(self, hidden: int = 256, in_dim: int = TOK_DIM) -> None:
        super().__init__()
        self.norm = Standardize(in_dim)
        self.fc1 = nn.Linear(in_dim, hidden)
        self.drop = nn.Dropout(0.2)
        self.fc2 = nn.Linear(hidden, 1)

    def span_logits(self, spans, valid):  # [B, K, D], [B, K] -> [B, K]
        s = self.fc2(self.drop(nn.functional.gelu(self.fc1(self.norm(spans))))).squeeze(-1)
        return s.masked_fill(~valid, -1e4)

    def forward(self, tok, mask):  # [B, S, D] token features -> [B]
        return self.span_logits(*span_means(tok, mask)).max(dim=1).values


class SignalGraph(nn.Module):
    """One forward pass -> embedding, category_logits, jailbreak_logit, complexity_logit, pii_logits, seq_feat,
    jailbreak_span_logit.

    seq_feat is the frozen feature vector the sequence heads read. The cache's hit verifier reads it for a
    query/candidate pair encoded as one row, where attention runs across both texts. jailbreak_span_logit is the
    SpanHead's score of the row's most attack-like span."""

    def __init__(self, enc: MiniLM, cat: SeqHead, jb: SeqHead, cx: SeqHead, pii: TokHead, span: SpanHead) -> None:
        super().__init__()
        self.enc = enc
        self.cat_head = cat
        self.jb_head = jb
        self.cx_head = cx
        self.pii_head = pii
        self.span_head = span

    def forward(self, input_ids, attention_mask):
        hs = self.enc(input_ids, attention_mask)
        emb = masked_mean(hs[-1], attention_mask)
        emb = emb / emb.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        sf = seq_features(hs, attention_mask)
        tf = tok_features(hs)
        return (
            emb,
            self.cat_head(sf),
            self.jb_head(sf).squeeze(-1),
            self.cx_head(sf).squeeze(-1),
            self.pii_head(tf),
            sf,
            self.span_head(tf, attention_mask),
        )
