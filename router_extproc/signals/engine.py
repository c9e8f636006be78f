"""SignalEngine: one ONNX session run per batch -> embedding, category, complexity, jailbreak, PII.

Runtime dependencies: onnxruntime, tokenizers, numpy (no torch).

Prompts longer than one window (126 content tokens, the length the heads were trained on) are read as
overlapping windows that cover the whole text, each only as long as the cover needs (windows.py). Jailbreak is
the maximum over all windows (an injection hidden in the middle of a long document counts) and PII is decoded on
every window with offsets into the original text.
Two detectors give the jailbreak score: the head on each window's pooled features, and the span head, which
scores the window's most attack-like 12-token span (a short attack pasted into a long benign prompt is a small
part of its window's pooled features). The span score is mapped onto the pooled head's scale so that each
detector's shipped threshold falls on the same value; the score is the higher of the two.
The embedding, category and complexity average the windows that lie in the head and the tail of the prompt
(``max_tokens`` in total), so a long prompt is classified by how it starts and ends, not silently cut.
A request's verdict must not depend on other users' traffic. The int8 graph (encoder.onnx, models/export.py)
quantizes activations with DynamicQuantizeLinear: one scale for the whole input tensor, so rows that share a session
run change each other's outputs. Batched 16 requests to a run, 3 of 1,139 traffic verdicts (tests/bench/
bench_traffic.py --quick) flipped, 37 categories changed and 16 requests gained or lost PII. So on that graph each
request's rows run apart from other requests' (its own windows still share a run: they are its own text). On that
traffic this cost no throughput (83 s alone vs 85 s batched), on 16 bare 50-token prompts about 35 % on an idle
machine (265 vs 417 a second; 7 to 22 % in two runs on contended cores); a lone request's latency is the same.
The fp16 GPU graph has no data-dependent scale (models/fp16.py): requests share its runs (``shares_batches``),
where batching is most of a GPU's throughput.
Windows are also cheaper than one long row: attention is quadratic in the row length, and on 2 CPU cores five
128-token windows took 39 ms where one 512-position row took 48 ms (same run).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

import numpy as np

from .batcher import MicroBatcher
from .pairs import pair_row
from .pii import combine, decode_tags
from .spec import PAIR_OUTPUT, SIGNAL_OUTPUTS, SPAN_OUTPUT, ModelThresholds
from .inputs import SUSPECT_MIN, Planned, Read, choose_windows, operator_names, scan_blocks, single
from .types import PIIEntity, Signals
from .windows import windows

log = logging.getLogger(__name__)

PAIR_MODEL = "verifier.onnx"  # the verifier's trained pair model (pair recipe), read in place of seq_feat
GPU_MODEL = "encoder.fp16.onnx"  # the CUDA provider's graph: int8 MatMuls would run on the host (models/fp16.py)
FOCUS_PAD = 8   # tokens kept either side of a suspicious run's attack words (see SignalEngine._focus)
FOCUS_RESERVE = 96   # budget tokens kept for narrowed rows beside the topic's first and last windows
# Words that jailbreaks and injected instructions lean on (as whole tokens of the uncased vocabulary). Their count
# per window ranks the middle of a long untrusted text for the guards when the budget cannot read all of it. Some are
# common in benign text ("now", "system", "new"); measured out of source (tests/bench/bench_budget.py, 20 attacks
# mid-document, 30 benign documents), dropping them cost more recall (0.75/0.80 -> 0.60/0.65 at 1,000/4,000 words)
# than it saved flags (15/30 -> 11/30 and 15/30 -> 14/30, where reading every window flags 17/30 and 27/30).
SUSPECT_WORDS = frozenset("""ignore ignoring disregard forget previous prior above instructions instruction rules
    pretend roleplay jailbreak jailbroken dan unrestricted unfiltered uncensored restrictions restricted override
    bypass developer mode persona obey comply refuse refusal guidelines policy policies filter filters censorship
    ethical ethics moral morals hypothetical simulate simulation evil illegal harmful unethical reveal secret
    confidential password system prompt admin sudo immediately instead now new assistant ai chatgpt gpt openai
    anything limits limitations boundaries""".split())


def _providers(device: str) -> list[str]:
    import onnxruntime as ort

    avail = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" not in avail:
            raise RuntimeError(
                "device='cuda' was requested but onnxruntime has no CUDAExecutionProvider "
                f"(available: {avail}); install onnxruntime-gpu (pip install '.[gpu]') on a machine with a GPU"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "auto":
        if "CUDAExecutionProvider" in avail:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]
    raise ValueError(f"device must be auto, cpu or cuda, not {device!r}")


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class SignalEngine:
    def __init__(self, model_dir: str | os.PathLike, *, device: str = "auto", max_batch_size: int = 16,
                 max_wait_ms: float = 2.0, max_tokens: int = 512, threads: int = 0,
                 spin: bool = True, spin_after_run: bool = False, max_queue: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model_dir = Path(model_dir)
        for f in ("tokenizer.json", "labels.json"):
            if not (model_dir / f).exists():
                raise FileNotFoundError(f"{model_dir / f} is missing: build the models first (make models)")
        self.model_dir = model_dir
        self.labels = json.loads((model_dir / "labels.json").read_text())
        self.categories: tuple[str, ...] = tuple(self.labels["categories"])
        self.pii_tags: tuple[str, ...] = tuple(self.labels["pii_tags"])
        self.dimension = int(self.labels.get("dimension", 384))
        temp = self.labels.get("temperature", {})
        self._t_cat = float(temp.get("category", 1.0))
        self._t_jb = float(temp.get("jailbreak", 1.0))
        self._t_cx = float(temp.get("complexity", 1.0))
        thresholds = ModelThresholds.from_labels(self.labels)
        self.pii_threshold = thresholds.pii
        jb_thr = min(max(thresholds.jailbreak, 1e-6), 1 - 1e-6)
        self._jb_thr_logit = float(np.log(jb_thr / (1 - jb_thr)))
        # None: the span detector is off (a model built without it, or the build calibrating it)
        self.span_threshold: float | None = thresholds.jailbreak_span
        self.max_tokens = max(16, min(int(max_tokens), int(self.labels.get("max_length", 512))))

        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self._cls = self.tokenizer.token_to_id("[CLS]")
        self._sep = self.tokenizer.token_to_id("[SEP]")

        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # see SignalsConfig.spin (measured trade-off between operator latency and CPU shared with Envoy)
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        so.add_session_config_entry("session.inter_op.allow_spinning", "1" if spin else "0")
        # see SignalsConfig.spin_after_run: onnxruntime's pool threads otherwise keep busy-waiting after each run,
        # on the cores that the event loop and Envoy need next
        so.add_session_config_entry("session.force_spinning_stop", "0" if spin_after_run else "1")
        providers = _providers(device)
        model = model_dir / "encoder.onnx"
        if providers[0] == "CUDAExecutionProvider" and (model_dir / GPU_MODEL).exists():
            model = model_dir / GPU_MODEL
        if not model.exists():
            raise FileNotFoundError(f"{model} is missing: build the models first (make models)")
        self.session = ort.InferenceSession(str(model), so, providers=providers)
        self.provider = self.session.get_providers()[0]
        if device == "cuda" and self.provider != "CUDAExecutionProvider":
            raise RuntimeError("device='cuda' was requested but the CUDA provider could not be initialised (no GPU?)")
        if self.provider != "CUDAExecutionProvider" and model.name == GPU_MODEL and (model_dir / "encoder.onnx").exists():
            # device=auto on a host whose onnxruntime has CUDA but no usable GPU: fp16 on a CPU is the slow choice
            model = model_dir / "encoder.onnx"
            self.session = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
            self.provider = self.session.get_providers()[0]
        self.model_file = model.name
        self.shares_batches = model.name == GPU_MODEL   # requests share session runs (module docstring)
        names = {o.name for o in self.session.get_outputs()}
        self._outputs = [*SIGNAL_OUTPUTS, *([SPAN_OUTPUT] if SPAN_OUTPUT in names else [])]
        if SPAN_OUTPUT not in names:
            self.span_threshold = None
        self._load_pair_model(model_dir, so)
        log.info("signals: onnxruntime provider %s (device=%s) model=%s", self.provider, device, model)
        self.rank_middle = True   # False: spread the budget's middle windows evenly (tests/bench/bench_budget.py)
        vocab = self.tokenizer.get_vocab()
        self._suspect_ids = np.array(sorted({vocab[w] for w in SUSPECT_WORDS if w in vocab}), np.int64)
        # a request that runs alone gains nothing by waiting for others, and its answer need not wait for theirs
        self._batcher: MicroBatcher[tuple[tuple[Read, ...], int | None], Signals] = MicroBatcher(
            self.analyze_requests, max_batch_size=max_batch_size if self.shares_batches else 1,
            max_wait_ms=max_wait_ms, max_queue=max_queue)

    # ------------------------------------------------------------------ planning
    def _plan(self, text: str):
        """For one text: the rows to run (token ids with [CLS]/[SEP]), each row's first content token, the token
        offsets, the token count, and which rows feed the embedding/category/complexity (head and tail)."""
        enc = self.tokenizer.encode(text, add_special_tokens=False)
        ids, offs = enc.ids, enc.offsets
        n = len(ids)
        starts, size = windows(n)
        rows = [[self._cls] + ids[s:s + size] + [self._sep] for s in starts]
        return rows, starts, offs, n, self._head_tail(starts, size, n)

    def _head_tail(self, starts: list[int], size: int, n: int) -> list[int]:
        """The windows that lie in the first and last ``max_tokens / 2`` tokens: what a topic is classified on."""
        half = (self.max_tokens - 2) // 2
        return [i for i, s in enumerate(starts) if n <= 2 * half or s < half or s + size > n - half]

    def _plan_request(self, reads: tuple[Read, ...], budget: int | None) -> list[Planned]:
        """Tokenize each Read, cut it into windows and choose the windows to run within ``budget`` tokens."""
        planned = []
        for r in reads:
            blocks = [(0, len(r.text))] if budget is None else scan_blocks(r.text, self.rank_middle and bool(r.guard))
            ids: list[int] = []
            offs: list[tuple[int, int]] = []
            for a, b in blocks:
                enc = self.tokenizer.encode(r.text[a:b], add_special_tokens=False)
                ids += enc.ids
                offs += [(s + a, e + a) for s, e in enc.offsets] if a else enc.offsets
            starts, size = windows(len(ids))
            skipped = len(r.text) - sum(b - a for a, b in blocks)
            planned.append(Planned(r, ids, offs, starts, size, skipped_chars=skipped))
        # FOCUS_RESERVE tokens are kept back from the windows for the narrowed rows beside the topic's (_focus)
        reserve = FOCUS_RESERVE if budget is not None and self.rank_middle else 0
        picks = choose_windows(planned, None if budget is None else budget - reserve, self._head_tail,
                               self._suspicion if self.rank_middle else None)
        for j, p in enumerate(planned):
            p.chosen = sorted(picks.get(j, ()))
        if budget is not None and self.rank_middle:
            spare = budget - sum(b - a + 2 for p in planned for a, b in map(p.span, p.chosen))
            for p in planned:
                if p.read.guard and len(p.starts) > 2:
                    spare = self._focus(p, spare)
        return planned

    def _focus(self, p: Planned, spare: int) -> int:
        """Narrow each chosen window that holds attack words to those words and FOCUS_PAD tokens around them (a
        window the topic reads keeps its row and gets a narrowed one beside it, within the ``spare`` budget).
        Pasted into a window of benign text an attack is a small part of what the heads read: one 2,600-token
        test's attack scored 4.7 on the span head (threshold 5.6) in its full window and 9.8 narrowed."""
        hits = np.flatnonzero(np.isin(np.asarray(p.ids, dtype=np.int64), self._suspect_ids))
        n, half = len(p.ids), p.size // 2
        topic = set(self._head_tail(p.starts, p.size, n)) if p.read.latest else set()
        for i in list(p.chosen):
            s = p.starts[i]
            near = hits[(hits >= s - half) & (hits < s + p.size + half)]
            if len(near) < SUSPECT_MIN:
                continue
            a, b = max(int(near[0]) - FOCUS_PAD, 0), min(int(near[-1]) + FOCUS_PAD + 1, n)
            if b - a > p.size:   # a longer run than one window: the window centred on it
                a = min(max((a + b) // 2 - half, 0), n - p.size)
                b = a + p.size
            if i not in topic:
                spare += (p.span(i)[1] - p.span(i)[0]) - (b - a)
                p.focus[i] = (a, b)
            elif b - a + 2 <= spare:
                spare -= b - a + 2
                p.focus[len(p.starts)] = (a, b)
                p.chosen.append(len(p.starts))
                p.starts.append(a)
        return spare

    def _suspicion(self, ids: list[int], starts: list[int], size: int) -> np.ndarray:
        """Per window, how many of its tokens are words that attacks use: cheap (vectorised, no model), it ranks
        the middle windows of a long untrusted segment when the budget cannot read them all."""
        hits = np.isin(np.asarray(ids, dtype=np.int64), self._suspect_ids)
        c = np.concatenate(([0], np.cumsum(hits)))
        st = np.asarray(starts)
        return c[np.minimum(st + size, len(ids))] - c[st]

    def _run(self, rows: list[list[int]]):
        """One session run per length bucket: a micro-batch mixes requests of very different lengths, and one
        padded tensor would run every short prompt at the longest one's length."""
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        groups: list[list[int]] = []
        for i in order:
            if groups and len(rows[i]) <= 2 * len(rows[groups[-1][0]]) + 8:
                groups[-1].append(i)
            else:
                groups.append([i])
        n, longest = len(rows), max(len(r) for r in rows)
        emb = cat = jb = cx = pii = span = None
        for g in groups:
            L = max(len(rows[i]) for i in g)
            ids = np.zeros((len(g), L), dtype=np.int64)
            for j, i in enumerate(g):
                ids[j, : len(rows[i])] = rows[i]
            mask = (ids != 0).astype(np.int64)
            mask[:, 0] = 1
            outs = self.session.run(self._outputs, {"input_ids": ids, "attention_mask": mask})
            if emb is None:
                emb = np.zeros((n, outs[0].shape[1]), np.float32)
                cat = np.zeros((n, outs[1].shape[1]), np.float32)
                jb = np.zeros((n,), np.float32)
                cx = np.zeros((n,), np.float32)
                pii = np.zeros((n, longest, outs[4].shape[2]), np.float32)
                span = np.full((n,), -np.inf, np.float32)
            emb[g], cat[g], jb[g], cx[g] = outs[0], outs[1], outs[2], outs[3]
            pii[g, :L] = outs[4]
            if len(outs) > 5:
                span[g] = outs[5]
        return emb, cat, jb, cx, pii, span

    def analyze_batch(self, texts: list[str]) -> list[Signals]:
        """Each text read whole as one user turn (every window): the offline tools' and benchmarks' view."""
        return self.analyze_requests([(single(t), None) for t in texts])

    def analyze_requests(self, jobs: list[tuple[tuple[Read, ...], int | None]]) -> list[Signals]:
        """Each job is one request's Reads (inputs.plan) and its token budget. Each request's rows run apart from
        the others' unless the graph's outputs do not depend on batch-mates (``shares_batches``)."""
        plans = [self._plan_request(reads, budget) for reads, budget in jobs]
        if self.shares_batches:
            return self._signals(plans)
        return [s for planned in plans for s in self._signals([planned])]

    def _signals(self, plans: list[list[Planned]]) -> list[Signals]:
        """The signals of some planned requests from one session run per length bucket of their rows."""
        if not plans:
            return []
        rows = [[self._cls] + p.ids[slice(*p.span(i))] + [self._sep]
                for planned in plans for p in planned for i in p.chosen]
        out = self._run(rows)
        signals, base = [], 0
        for planned in plans:
            n_rows = sum(len(p.chosen) for p in planned)
            signals.append(self._aggregate(planned, [o[base:base + n_rows] for o in out]))
            base += n_rows
        return signals

    def _aggregate(self, planned: list[Planned], out) -> Signals:
        """One request's signals from its rows, each signal over the rows of the Reads it reads (inputs.py)."""
        emb, cat, jb, cx, pii, span = out
        rows = [(j, i) for j, p in enumerate(planned) for i in p.chosen]
        of = np.array([j for j, _ in rows])
        tokens = np.array([max(1, b - a) for a, b in (planned[j].span(i) for j, i in rows)], np.float32)
        latest = planned[0]  # inputs.plan puts the latest turn first
        main = set(self._head_tail(latest.starts[:latest.grid], latest.size, len(latest.ids)))
        is_main = np.array([j == 0 and i in main for j, i in rows])
        w = tokens * is_main
        e = (emb * (w / w.sum())[:, None]).sum(0)
        e /= max(float(np.linalg.norm(e)), 1e-12)
        # topic: each Read's rows share its weight by their token counts (the latest turn: its head and tail)
        tw = np.zeros(len(rows), np.float32)
        for j, p in enumerate(planned):
            sel = (of == j) & (is_main if j == 0 else True)
            if p.read.topic and sel.any():
                tw[sel] = p.read.topic * tokens[sel] / tokens[sel].sum()
        tw /= tw.sum()
        z = (cat * tw[:, None]).sum(0) / self._t_cat
        prob = np.exp(z - z.max())
        prob /= prob.sum()
        k = int(prob.argmax())
        guard = np.array([planned[j].read.guard or "" for j, _ in rows])
        ents = [PIIEntity(t, s, end, round(float(sc), 4), j) for j, p in enumerate(planned) if p.read.pii
                for s, end, t, sc in self._pii(p, pii[of == j])]
        found, persona = operator_names([p.read for p in planned], ents)
        return Signals(
            embedding=np.ascontiguousarray(e, dtype=np.float32),
            category=self.categories[k],
            category_confidence=float(prob[k]),
            complexity=float(_sigmoid(float((cx * tw).sum()) / self._t_cx)),
            jailbreak=self._attack(jb[guard == "jailbreak"], span[guard == "jailbreak"]),
            injection=self._attack(jb[guard == "injection"], span[guard == "injection"]),
            pii=found,
            tokens=len(latest.ids),
            unread_tokens=sum(p.unread for p in planned if p.read.pii),
            operator_names=persona,
        )

    def _attack(self, jb: np.ndarray, span: np.ndarray) -> float:
        """The attack score of some rows: the higher of the pooled head and the span head mapped onto its scale."""
        if not len(jb):
            return 0.0
        score = float(_sigmoid(jb / self._t_jb).max())
        if self.span_threshold is not None:
            s = float(span.max()) - self.span_threshold + self._jb_thr_logit
            score = max(score, float(_sigmoid(min(max(s, -60.0), 60.0))))  # -1e4: a row without spans
        return score

    def _pii(self, p: Planned, logits: np.ndarray) -> list:
        """PII entities of one Read: the tagger on its chosen windows, the validated patterns on its whole text."""
        pieces: list = []
        for lg, i in zip(logits, p.chosen):
            a, b = p.span(i)
            nt = b - a
            lg = lg[1:1 + nt]
            pr = np.exp(lg - lg.max(-1, keepdims=True))
            pr /= pr.sum(-1, keepdims=True)
            pieces += decode_tags(pr, p.offsets[a:b], self.pii_tags, self.pii_threshold)
        return combine(p.read.text, pieces)

    def jailbreak_span_logits(self, texts: list[str]) -> np.ndarray:
        """The span head's raw score of each text (its highest span over all windows): what the build calibrates
        span_threshold on."""
        out, step = [], 8 if self.shares_batches else 1   # the runtime's runs (see shares_batches)
        for s in range(0, len(texts), step):
            plans = [self._plan(t)[0] for t in texts[s:s + step]]
            span = self._run([r for rows in plans for r in rows])[5]
            cuts = np.cumsum([0] + [len(rows) for rows in plans])
            out += [float(span[a:b].max()) for a, b in zip(cuts[:-1], cuts[1:])]
        return np.array(out, np.float32)

    async def analyze(self, text: str, budget: int | None = None) -> Signals:
        """One text read as a user turn (every window unless ``budget`` tokens bound the read)."""
        return await self._batcher.submit((single(text), budget))

    async def analyze_reads(self, reads: tuple[Read, ...], budget: int | None) -> Signals:
        """One request's Reads (inputs.plan), micro-batched with every other request's."""
        return await self._batcher.submit((reads, budget))

    # ------------------------------------------------------------------ pairs (the cache's hit verifier)
    @property
    def has_pair_features(self) -> bool:
        return self.pair_dim > 0

    def pair_row(self, a: str, b: str) -> list[int]:
        return pair_row(self.tokenizer.encode(a, add_special_tokens=False).ids,
                        self.tokenizer.encode(b, add_special_tokens=False).ids, self._cls, self._sep)

    def _load_pair_model(self, model_dir: Path, so) -> None:
        """What reads the cache verifier's pair rows: the encoder's frozen seq_feat (pair_dim 0 for a model without
        that output), or the verifier's trained pair model (models/verifier/pair_model.py) when its recipe built one
        next to verifier.json: a second session that reads the same pair rows in place of seq_feat."""
        import onnxruntime as ort  # lazily, as in __init__

        self.pair_dim = next((int(o.shape[-1]) for o in self.session.get_outputs()
                              if o.name == PAIR_OUTPUT and isinstance(o.shape[-1], int)), 0)
        self.pair_session = self._pair_output = None
        if (model_dir / PAIR_MODEL).exists():
            self.pair_session = ort.InferenceSession(str(model_dir / PAIR_MODEL), so,
                                                     providers=["CPUExecutionProvider"])
            out = self.pair_session.get_outputs()[0]
            self._pair_output = out.name
            self.pair_dim = int(out.shape[-1]) if isinstance(out.shape[-1], int) else 1

    def pair_features_batch(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """Features [n, D] of each (a, b) pair read as one row, the verifier's cross-attention input: the encoder's
        frozen seq_feat, or the trained pair model's features (pair_feat) where verifier.onnx is present."""
        rows = [self.pair_row(a, b) for a, b in pairs]
        if not rows:
            return np.zeros((0, 0), np.float32)
        ids = np.zeros((len(rows), max(map(len, rows))), dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
        feeds = {"input_ids": ids, "attention_mask": (ids != 0).astype(np.int64)}
        if self.pair_session is not None:
            (feat,) = self.pair_session.run([self._pair_output], feeds)
        else:
            (feat,) = self.session.run([PAIR_OUTPUT], feeds)
        return np.asarray(feat, np.float32)

    async def pair_features(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """pair_features_batch on the inference thread: it never runs on the event loop, and it queues behind
        (never beside) the signal batches, which already use every core they are given."""
        return await asyncio.get_running_loop().run_in_executor(
            self._batcher.executor, self.pair_features_batch, pairs)

    async def close(self) -> None:
        await self._batcher.close()
