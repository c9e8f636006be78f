"""Frozen-feature extraction with the same int8 encoder the runtime uses (so heads see runtime features).

Each text runs alone, as a request does at run time (router_extproc/signals/engine.py runs each request's rows apart
from other requests'): the int8 graph quantizes activations with one scale per input tensor, so a text extracted in a
batch beside others got features that depended on its batch-mates. Training features then differed from what the
runtime computes for the same text, and any change to one data set (a jailbreak text added) moved the features of
unrelated texts (the domain head's MMLU questions), so builds were not comparable. Alone, a text's features are a
function of the text only. It costs about a third more extraction time on 2 cores (600 texts: 1.77 s batched by 32,
2.38 s alone).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm


class Extractor:
    def __init__(self, onnx_path: Path, tokenizer_path: Path, threads: int = 2) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
        self.tok = Tokenizer.from_file(str(tokenizer_path))
        self.tok.no_padding()
        self.tok.no_truncation()

    def encode(self, texts: list[str], max_len: int):
        encs = self.tok.encode_batch(texts)
        out = []
        for e in encs:
            ids = e.ids
            offs = e.offsets
            if len(ids) > max_len:
                ids = ids[: max_len - 1] + [ids[-1]]
                offs = offs[: max_len - 1] + [(0, 0)]
            out.append((ids, offs))
        return out

    def run(self, texts: list[str], max_len: int = 256, want_tokens: bool = False,
            desc: str = "features", bar=None):
        """Sequence features (and token features) of each text, each text in a session run of its own (module
        docstring), so the result for a text does not depend on the other texts."""
        enc = self.encode(texts, max_len)
        seq = None
        toks: list = [None] * len(texts)
        own_bar = bar is None
        bar = bar or tqdm(total=len(texts), desc=desc, unit="text")
        for i, (row, _) in enumerate(enc):
            ids = np.asarray([row], dtype=np.int64)
            mask = np.ones_like(ids)
            sf, tf = self.sess.run(None, {"input_ids": ids, "attention_mask": mask})
            if seq is None:
                seq = np.zeros((len(texts), sf.shape[1]), dtype=np.float32)
            seq[i] = sf[0]
            if want_tokens:
                toks[i] = tf[0].astype(np.float16)
            bar.update(1)
        if own_bar:
            bar.close()
        return seq, (toks if want_tokens else None), enc
