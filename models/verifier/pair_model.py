"""The verifier's pair model: MiniLM read as a cross-encoder, its top layer fine-tuned on pair rows.

A pair row is ``[CLS] query [SEP] candidate [SEP]`` (``router_extproc.signals.pairs.pair_row``). The five lower
layers stay the frozen encoder's (int8 per-channel, quantized as ``encoder.onnx`` is); the sixth is trained for
the job, and only its [CLS] position is computed: keys and values of every token feed the [CLS] query, whose
attention output and feed-forward block give the pair's features (384). The [CLS] position alone is what the
head reads, so the other positions' feed-forward blocks (two thirds of a layer's cost) are never run, in
training or at run time. The head is trained with the layer, over those features and the stage-1 features
(embeddings and lexical, ``verify.pair_features``); it ships as the verifier's one-hidden-layer MLP
(``verifier.npz``), which the router already runs in numpy.

The multi-layer variants (``--recipe pair2`` / ``pair3``, recipe keys ``layers`` and ``pooling``) tune the top two
or three layers at every position (``TopStack``) and pool their output by the mask's mean, as the encoder's
sentence embedding does: a sentence-embedding MiniLM keeps its meaning in the mean of its tokens, which the
one-layer [CLS] variant read less well than the frozen ``seq_feat`` (docs/cache.md § Verifier).

Build time only (torch). Training reads the lower layers' states of each pair row once (``LowerGraph``, exported
and quantized, run by ONNX Runtime), then trains ``TopLayer`` over them; the router runs ``PairGraph``, one ONNX
graph of both, whose top layer stays fp32 (as it was trained) by its node names.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from models.bert import HIDDEN, N_HEADS, N_LAYERS, Layer, MiniLM

LOWER = N_LAYERS - 1   # frozen layers below the tuned one
TOP_NODES = "pair_top"  # the name every node of the tuned layer carries in the exported graph (kept fp32)
OUTPUT = "pair_feat"


class LowerGraph(nn.Module):
    """Embeddings + the frozen lower layers (``n_lower`` of them): the states [B, S, 384] the tuned layers read."""

    def __init__(self, enc: MiniLM, n_lower: int = LOWER) -> None:
        super().__init__()
        self.enc = enc
        self.n_lower = n_lower

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        e = self.enc
        pos = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        x = e.ln(e.word(input_ids) + e.pos(pos))
        bias = (1.0 - attention_mask.to(x.dtype))[:, None, None, :] * -1e4
        for layer in e.layers[:self.n_lower]:
            x = layer(x, bias)
        return x


class TopLayer(nn.Module):
    """The tuned sixth layer at the [CLS] position only: states [B, S, 384], mask → features [B, 384]."""

    def __init__(self, init: Layer) -> None:
        super().__init__()
        self.layer = Layer()
        self.layer.load_state_dict(init.state_dict())
        for p in self.layer.parameters():
            p.requires_grad_(True)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        L = self.layer
        b, s, _ = x.shape
        dh = HIDDEN // N_HEADS
        bias = (1.0 - attention_mask.to(x.dtype))[:, None, None, :] * -1e4     # [B, 1, 1, S]
        q = L.q(x[:, :1]).view(b, 1, N_HEADS, dh).transpose(1, 2)              # [B, H, 1, dh]
        k = L.k(x).view(b, s, N_HEADS, dh).transpose(1, 2)
        v = L.v(x).view(b, s, N_HEADS, dh).transpose(1, 2)
        att = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(dh)) + bias, dim=-1)
        ctx = torch.matmul(att, v).transpose(1, 2).reshape(b, 1, HIDDEN)
        c = L.ln1(x[:, :1] + L.o(ctx))
        c = L.ln2(c + L.fc2(nn.functional.gelu(L.fc1(c))))
        return c[:, 0]


class TopStack(nn.Module):
    """The tuned top layers at every position, their output mean-pooled over the row's tokens (the mask):
    states [B, S, 384], mask → features [B, 384]."""

    def __init__(self, init: list[Layer]) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        for src in init:
            layer = Layer()
            layer.load_state_dict(src.state_dict())
            for p in layer.parameters():
                p.requires_grad_(True)
            self.layers.append(layer)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        m = attention_mask.to(x.dtype)
        bias = (1.0 - m)[:, None, None, :] * -1e4
        for layer in self.layers:
            x = layer(x, bias)
        return (x * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp(min=1.0)


def top_model(enc: MiniLM, layers: int, pooling: str) -> nn.Module:
    """The tuned part of a pair recipe: the [CLS]-only sixth layer (``layers`` 1, ``pooling`` "cls"), or the top
    ``layers`` layers at every position, mean-pooled ("mean")."""
    if pooling == "cls":
        if layers != 1:
            raise ValueError("the [CLS]-only pair model tunes one layer")
        return TopLayer(enc.layers[-1])
    if pooling != "mean" or not 1 <= layers < N_LAYERS:
        raise ValueError(f"pair model: layers {layers}, pooling {pooling!r} not supported")
    return TopStack(list(enc.layers[N_LAYERS - layers:]))


class Head(nn.Module):
    """The verifier's MLP over [pair features, standardised stage-1 features] → logit, trained with the layer."""

    def __init__(self, n_base: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(HIDDEN + n_base, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, 1))

    def forward(self, feat: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([feat, base], -1))[:, 0]

    def as_member(self, mu, sd) -> dict:
        """The head as verifier.npz's member 0 over [features, raw stage-1 features]: the standardisation of the
        stage-1 features (mean ``mu``, scale ``sd``) folded into the first layer."""
        import numpy as np

        w1 = self.net[0].weight.detach().numpy().T.astype(np.float64)   # [384 + n_base, hidden]
        b1 = self.net[0].bias.detach().numpy().astype(np.float64)
        wb = w1[HIDDEN:] / sd[:, None]
        b1 = b1 - (mu / sd) @ w1[HIDDEN:]
        return {"w1": np.concatenate([w1[:HIDDEN], wb]).astype(np.float32), "b1": b1.astype(np.float32),
                "w2": self.net[3].weight.detach().numpy().reshape(-1).astype(np.float32),
                "b2": self.net[3].bias.detach().numpy().astype(np.float32)}


class PairGraph(nn.Module):
    """What the router runs on a pair row: the frozen lower layers, then the tuned top layer → features [B, 384]."""

    def __init__(self, enc: MiniLM, top: nn.Module, n_lower: int = LOWER) -> None:
        super().__init__()
        self.lower = LowerGraph(enc, n_lower)
        setattr(self, TOP_NODES, top)  # the exported nodes are named after the attribute: kept fp32 by name

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return getattr(self, TOP_NODES)(self.lower(input_ids, attention_mask), attention_mask)


def export_graph(module: nn.Module, path, output: str) -> None:
    """ONNX export with a dynamic batch and length (the output is [batch, ...] or [batch, seq, ...])."""
    from models.export import OPSET

    module.eval()
    ids = torch.tensor([[101, 7592, 102, 2088, 102], [101, 7592, 102, 2088, 0]], dtype=torch.int64)
    mask = (ids != 0).to(torch.int64)
    dyn = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}, output: {0: "batch"}}
    with torch.no_grad():
        torch.onnx.export(module, (ids, mask), str(path), input_names=["input_ids", "attention_mask"],
                          output_names=[output], dynamic_axes=dyn, opset_version=OPSET, dynamo=False,
                          do_constant_folding=True)
