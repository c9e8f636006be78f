"""The real-embedding corpus of the scale benchmarks: real rows first, padding that stays unit-length and in their
cone, and the probes tied to the stored question they paraphrase."""

import numpy as np

from tests.bench.real_vectors import RealCorpus


def corpus(n=50, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=dim).astype(np.float32) * 3  # a shared direction: embeddings occupy a cone
    s = rng.normal(size=(n, dim)).astype(np.float32) + base
    s /= np.linalg.norm(s, axis=1, keepdims=True)
    q = s[:5] + 0.1 * rng.normal(size=(5, dim)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return RealCorpus(s, q, np.arange(5), np.array([1, 1, 0, 1, 0], np.int8))


def test_the_real_rows_come_first_and_unchanged():
    c = corpus()
    assert np.array_equal(c.rows(30), c.stored[:30])
    assert np.array_equal(c.rows(200)[:50], c.stored)


def test_padding_rows_are_unit_vectors_among_the_real_ones_and_reproducible():
    c = corpus()
    rows = c.rows(500)
    pad = rows[50:]
    assert pad.shape == (450, 16)
    assert np.allclose(np.linalg.norm(pad, axis=1), 1.0, atol=1e-5)
    centre = c.stored.mean(0) / np.linalg.norm(c.stored.mean(0))
    assert (pad @ centre).min() > (c.stored @ centre).min() - 0.05  # inside the cone the real rows span
    assert np.array_equal(rows, c.rows(500))  # same seed, same padding: runs compare
