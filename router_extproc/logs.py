"""Structured logging: one JSON object per line, with the request id when there is one."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None)))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def _not_lite_noise(record: logging.LogRecord) -> bool:
    """Milvus Lite runs its gRPC server in our process, and pymilvus asks it for a timestamp (AllocTimestamp) while
    creating an index, which Lite does not implement: the sync gRPC server logs that as an error with a traceback
    at every start, though pymilvus carries on. Only that record is dropped; the router's own server is grpc.aio."""
    exc = record.exc_info[1] if record.exc_info else None
    return not (record.name == "grpc._server" and isinstance(exc, NotImplementedError)
                and "AllocTimestamp" in (record.exc_text or "") + "".join(_tb_names(record)))


def _tb_names(record: logging.LogRecord) -> list[str]:
    tb = record.exc_info[2] if record.exc_info else None
    names = []
    while tb is not None:
        names.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    return names


def setup(level: str = "info", *, json_lines: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_not_lite_noise)
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
