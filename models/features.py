"""Frozen-feature extraction with the same int8 encoder the runtime uses (so heads see runtime features)."""
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

    def run(self, texts: list[str], max_len: int = 256, want_tokens: bool = False, batch: int = 32,
            desc: str = "features", bar=None):
        enc = self.encode(texts, max_len)
        order = np.argsort([len(i) for i, _ in enc])
        seq = None
        toks: list = [None] * len(texts)
        own_bar = bar is None
        bar = bar or tqdm(total=len(texts), desc=desc, unit="text")
        for s in range(0, len(order), batch):
            idx = order[s:s + batch]
            L = max(len(enc[i][0]) for i in idx)
            ids = np.zeros((len(idx), L), dtype=np.int64)
            for r, i in enumerate(idx):
                ids[r, : len(enc[i][0])] = enc[i][0]
            mask = (ids != 0).astype(np.int64)
            sf, tf = self.sess.run(None, {"input_ids": ids, "attention_mask": mask})
            if seq is None:
                seq = np.zeros((len(texts), sf.shape[1]), dtype=np.float32)
            seq[idx] = sf
            if want_tokens:
                for r, i in enumerate(idx):
                    toks[i] = tf[r, : len(enc[i][0])].astype(np.float16)
            bar.update(len(idx))
        if own_bar:
            bar.close()
        return seq, (toks if want_tokens else None), enc
