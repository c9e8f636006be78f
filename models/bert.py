"""A minimal BERT (MiniLM-L6-H384) in plain torch, loaded straight from the packaged safetensors.

No `transformers` / `sentence-transformers` dependency: the architecture is 6 standard post-LN BERT layers.
token_type_ids are always 0 for single sentences, so the token-type embedding row 0 is folded into the
word embeddings at load time (the ONNX graph then needs only input_ids and attention_mask).
"""
from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
import torch
from torch import nn

HIDDEN = 384
N_LAYERS = 6
N_HEADS = 12
INTER = 1536
MAX_POS = 512
VOCAB = 30522
LN_EPS = 1e-12

_DT = {"F32": np.float32, "I64": np.int64, "F16": np.float16}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(data[a:b], dtype=_DT[v["dtype"]]).reshape(v["shape"]).copy()
    return out


class Layer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q = nn.Linear(HIDDEN, HIDDEN)
        self.k = nn.Linear(HIDDEN, HIDDEN)
        self.v = nn.Linear(HIDDEN, HIDDEN)
        self.o = nn.Linear(HIDDEN, HIDDEN)
        self.ln1 = nn.LayerNorm(HIDDEN, eps=LN_EPS)
        self.fc1 = nn.Linear(HIDDEN, INTER)
        self.fc2 = nn.Linear(INTER, HIDDEN)
        self.ln2 = nn.LayerNorm(HIDDEN, eps=LN_EPS)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        dh = HIDDEN // N_HEADS

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, s, N_HEADS, dh).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        att = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(dh)) + bias
        att = torch.softmax(att, dim=-1)
        ctx = torch.matmul(att, v).transpose(1, 2).reshape(b, s, HIDDEN)
        x = self.ln1(x + self.o(ctx))
        h = self.fc2(nn.functional.gelu(self.fc1(x)))
        return self.ln2(x + h)


class MiniLM(nn.Module):
    """Returns the list of hidden states of every layer (1..6), each [B, S, 384]."""

    def __init__(self) -> None:
        super().__init__()
        self.word = nn.Embedding(VOCAB, HIDDEN)
        self.pos = nn.Embedding(MAX_POS, HIDDEN)
        self.ln = nn.LayerNorm(HIDDEN, eps=LN_EPS)
        self.layers = nn.ModuleList([Layer() for _ in range(N_LAYERS)])

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[torch.Tensor]:
        s = input_ids.shape[1]
        pos = torch.arange(s, device=input_ids.device).unsqueeze(0)
        x = self.ln(self.word(input_ids) + self.pos(pos))
        bias = (1.0 - attention_mask.to(x.dtype))[:, None, None, :] * -1e4
        hs = []
        for layer in self.layers:
            x = layer(x, bias)
            hs.append(x)
        return hs

    @classmethod
    def from_safetensors(cls, path: Path) -> "MiniLM":
        w = read_safetensors(path)
        m = cls()
        t = lambda k: torch.from_numpy(w[k])  # noqa: E731
        sd = {
            "word.weight": t("embeddings.word_embeddings.weight") + t("embeddings.token_type_embeddings.weight")[0],
            "pos.weight": t("embeddings.position_embeddings.weight"),
            "ln.weight": t("embeddings.LayerNorm.weight"),
            "ln.bias": t("embeddings.LayerNorm.bias"),
        }
        names = {
            "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
            "o": "attention.output.dense", "ln1": "attention.output.LayerNorm",
            "fc1": "intermediate.dense", "fc2": "output.dense", "ln2": "output.LayerNorm",
        }
        for i in range(N_LAYERS):
            for ours, theirs in names.items():
                for p in ("weight", "bias"):
                    sd[f"layers.{i}.{ours}.{p}"] = t(f"encoder.layer.{i}.{theirs}.{p}")
        m.load_state_dict(sd)
        m.eval()
        for p in m.parameters():
            p.requires_grad_(False)
        return m


def masked_mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.to(h.dtype).unsqueeze(-1)
    return (h * m).sum(1) / m.sum(1).clamp(min=1e-9)


# Which frozen features the heads read (indices into the 6 hidden states, 0-based).
SEQ_MEAN_LAYERS = (1, 2, 3, 4, 5)   # mean-pooled layers 2..6
TOK_LAYERS = (3, 4, 5)              # per-token layers 4..6 for PII
SEQ_DIM = HIDDEN * (len(SEQ_MEAN_LAYERS) + 1)   # + CLS of the last layer
TOK_DIM = HIDDEN * len(TOK_LAYERS)


def seq_features(hs: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    parts = [masked_mean(hs[i], mask) for i in SEQ_MEAN_LAYERS] + [hs[-1][:, 0]]
    return torch.cat(parts, dim=-1)


def tok_features(hs: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([hs[i] for i in TOK_LAYERS], dim=-1)


class FeatureGraph(nn.Module):
    """Graph used at build time to precompute frozen features with the same int8 encoder as runtime."""

    def __init__(self, enc: MiniLM) -> None:
        super().__init__()
        self.enc = enc

    def forward(self, input_ids, attention_mask):
        hs = self.enc(input_ids, attention_mask)
        return seq_features(hs, attention_mask), tok_features(hs)
