"""The column-based insert request a Milvus server receives: every column of every entry, in schema order, with
the vectors bit-exact (they travel as the packed bytes of the float32 matrix)."""

import numpy as np
import pytest

from router_extproc.cache.base import Entry
from router_extproc.cache.milvus import TEXT_MAX, insert_request

DIM = 8


def entries(n, rng=np.random.default_rng(0)):
    v = rng.normal(size=(n, DIM)).astype(np.float32)
    return [Entry(id=10 + i, scope=f"s{i % 3}", filter_key="fk", fingerprint=f"fp{i}", text=f"question {i}",
                  embedding=v[i], response=f'{{"n": {i}}}', created_at=100.0 + i, expires_at=200.0 + i)
            for i in range(n)]


def columns(req):
    out = {}
    for fd in req.fields_data:
        kind = fd.WhichOneof("field")
        if kind == "vectors":
            out[fd.field_name] = np.asarray(fd.vectors.float_vector.data, np.float32).reshape(-1, fd.vectors.dim)
        else:
            sc = fd.scalars
            out[fd.field_name] = list(getattr(sc, sc.WhichOneof("data")).data)
    return out


def test_a_batch_becomes_one_column_per_field_with_every_row():
    es = entries(5)
    req = insert_request("c", "embedding", DIM, es)
    assert req.collection_name == "c" and req.num_rows == 5
    cols = columns(req)
    assert list(cols) == ["id", "scope", "filter_key", "fingerprint", "text", "embedding", "response", "created_at",
                          "expires_at"]
    assert cols["id"] == [e.id for e in es]
    assert cols["scope"] == [e.scope for e in es]
    assert cols["fingerprint"] == [e.fingerprint for e in es]
    assert cols["response"] == [e.response for e in es]
    assert cols["created_at"] == [e.created_at for e in es] and cols["expires_at"] == [e.expires_at for e in es]


def test_vectors_arrive_bit_exact_whatever_their_batch_size():
    for n in (1, 17, 3000):  # 3000 x 8 floats: a length prefix of more than one varint byte
        es = entries(n)
        got = columns(insert_request("c", "embedding", DIM, es))["embedding"]
        assert got.shape == (n, DIM)
        assert np.array_equal(got, np.stack([e.embedding for e in es]))


def test_long_text_is_clipped_to_the_column_size():
    e = entries(1)[0]
    e.text = "é" * TEXT_MAX
    (text,) = columns(insert_request("c", "embedding", DIM, [e]))["text"]
    assert len(text.encode()) <= TEXT_MAX


def test_a_vector_of_the_wrong_dimension_is_refused():
    with pytest.raises(ValueError, match="dimension"):
        insert_request("c", "embedding", DIM + 1, entries(2))


def test_a_collection_with_a_vector_copy_receives_each_vector_as_base64_of_its_float32_bytes():
    from router_extproc.cache.milvus import decode_vector

    for dim in (DIM, 384, 10):  # 384 and 10: rows that do and do not cut evenly into base64 groups
        v = np.random.default_rng(dim).normal(size=(7, dim)).astype(np.float32)
        es = [Entry(id=i, scope="s", filter_key="fk", fingerprint=f"{i}", text="q", embedding=v[i], response="{}",
                    created_at=0.0, expires_at=1.0) for i in range(7)]
        cols = columns(insert_request("c", "embedding", dim, es, copy_field="embedding_b64"))
        assert list(cols).index("embedding_b64") == list(cols).index("embedding") + 1  # schema order
        got = np.stack([decode_vector(s) for s in cols["embedding_b64"]])
        assert np.array_equal(got, v)  # bit-exact: the verifier reads the stored vector, not an approximation


def test_without_a_copy_field_the_request_is_unchanged():
    assert "embedding_b64" not in columns(insert_request("c", "embedding", DIM, entries(3)))


def test_a_searched_row_yields_the_stored_vector_from_its_copy_or_its_vector_field():
    from router_extproc.cache.milvus import MilvusBackend, encode_vectors
    from router_extproc.config_cache import MilvusConfig

    v = np.random.default_rng(1).normal(size=(1, DIM)).astype(np.float32)
    b = MilvusBackend(MilvusConfig(uri="http://127.0.0.1:1", collection="c"), DIM)
    row = {"id": 1, "scope": "s", "filter_key": "fk", "fingerprint": "f", "text": "q", "response": "{}",
           "created_at": 0.0, "expires_at": 1.0}
    assert np.array_equal(b._row_to_entry({**row, "embedding": v[0].tolist()}).embedding, v[0])
    b.copy_field = "embedding_b64"
    assert b._output_fields()[-1] == "embedding_b64"
    assert np.array_equal(b._row_to_entry({**row, "embedding_b64": encode_vectors(v)[0]}).embedding, v[0])
