"""router_extproc/logs.py: one JSON object per line; Milvus Lite's known start-up noise is dropped, nothing else."""

import json
import logging
import sys

from router_extproc.logs import JsonFormatter, _not_lite_noise


def _record(name: str, exc: BaseException | None, where: str = "AllocTimestamp") -> logging.LogRecord:
    info = None
    if exc is not None:
        def raiser():
            raise exc
        raiser.__code__ = raiser.__code__.replace(co_name=where)
        try:
            raiser()
        except BaseException:
            info = sys.exc_info()
    return logging.LogRecord(name, logging.ERROR, __file__, 1, "Exception calling application: %s", ("x",), info)


def test_lite_s_unimplemented_alloc_timestamp_is_dropped():
    assert not _not_lite_noise(_record("grpc._server", NotImplementedError("Method not implemented!")))


def test_other_errors_are_kept():
    assert _not_lite_noise(_record("grpc._server", NotImplementedError("x"), where="Search"))
    assert _not_lite_noise(_record("grpc._server", ValueError("x")))
    assert _not_lite_noise(_record("router_extproc.app", NotImplementedError("x")))
    assert _not_lite_noise(_record("grpc._server", None))


def test_a_record_is_one_json_object_with_its_extras():
    rec = _record("router_extproc.decision", None)
    rec.request_id = "req-1"
    out = json.loads(JsonFormatter().format(rec))
    assert out["level"] == "error" and out["logger"] == "router_extproc.decision" and out["request_id"] == "req-1"
