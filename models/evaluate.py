"""Held-out evaluation through the real runtime (router_extproc.signals.SignalEngine on the int8 graph)."""
from __future__ import annotations

import numpy as np


def f1_per_class(y: np.ndarray, p: np.ndarray, names) -> dict[str, float]:
    out = {}
    for k, n in enumerate(names):
        tp = int(((p == k) & (y == k)).sum())
        fp = int(((p == k) & (y != k)).sum())
        fn = int(((p != k) & (y == k)).sum())
        pr = tp / (tp + fp) if tp + fp else 0.0
        rc = tp / (tp + fn) if tp + fn else 0.0
        out[n] = round(2 * pr * rc / (pr + rc), 4) if pr + rc else 0.0
    return out


def confusion(y: np.ndarray, p: np.ndarray, k: int) -> list[list[int]]:
    m = np.zeros((k, k), dtype=int)
    for a, b in zip(y, p):
        m[a, b] += 1
    return m.tolist()


def roc(scores: np.ndarray, labels: np.ndarray):
    order = np.argsort(-scores)
    s, l = scores[order], labels[order]
    tps = np.cumsum(l)
    fps = np.cumsum(1 - l)
    tpr = tps / max(1, l.sum())
    fpr = fps / max(1, (1 - l).sum())
    auc = float(np.trapezoid(np.r_[0, tpr], np.r_[0, fpr]))
    return fpr, tpr, s, auc


def tpr_at_fpr(scores: np.ndarray, labels: np.ndarray, max_fpr: float) -> tuple[float, float]:
    """Best TPR with FPR <= max_fpr, and the threshold achieving it."""
    neg = np.sort(scores[labels == 0])[::-1]
    k = int(np.floor(max_fpr * len(neg)))
    thr = neg[k] if k < len(neg) else -np.inf
    thr = np.nextafter(thr, np.inf)
    return float((scores[labels == 1] >= thr).mean()), float(thr)


def span_prf(gold: list[list[tuple[int, int, str]]], pred: list[list[tuple[int, int, str]]], types,
             exact: bool = False) -> dict[str, dict[str, float]]:
    """Entity-level precision/recall per type. A match needs the same type and (exact: identical offsets;
    else: character IoU >= 0.5)."""
    stats = {t: [0, 0, 0] for t in types}  # tp_pred, n_pred, tp_gold, n_gold
    stats = {t: {"tp_p": 0, "np": 0, "tp_g": 0, "ng": 0} for t in types}

    def match(a, b):
        if a[2] != b[2]:
            return False
        if exact:
            return a[0] == b[0] and a[1] == b[1]
        inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
        union = max(a[1], b[1]) - min(a[0], b[0])
        return union > 0 and inter / union >= 0.5

    for g, p in zip(gold, pred):
        for e in p:
            if e[2] in stats:
                stats[e[2]]["np"] += 1
                stats[e[2]]["tp_p"] += any(match(e, x) for x in g)
        for e in g:
            stats[e[2]]["ng"] += 1
            stats[e[2]]["tp_g"] += any(match(e, x) for x in p)
    out = {}
    for t, s in stats.items():
        pr = s["tp_p"] / s["np"] if s["np"] else float("nan")
        rc = s["tp_g"] / s["ng"] if s["ng"] else float("nan")
        out[t] = {"precision": round(pr, 4), "recall": round(rc, 4), "n_gold": s["ng"], "n_pred": s["np"]}
    tp_p = sum(s["tp_p"] for s in stats.values())
    n_p = sum(s["np"] for s in stats.values())
    tp_g = sum(s["tp_g"] for s in stats.values())
    n_g = sum(s["ng"] for s in stats.values())
    out["ALL"] = {"precision": round(tp_p / max(1, n_p), 4), "recall": round(tp_g / max(1, n_g), 4),
                  "n_gold": n_g, "n_pred": n_p}
    return out
