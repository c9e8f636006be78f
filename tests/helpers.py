"""Helpers shared by the test suites (integration, reliability, milvus, bench): metrics scraping, polling, ports.

Free ports come from router_extproc.dev.stack (the Stack uses the same rule).
"""

from __future__ import annotations

import socket
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from router_extproc.dev.stack import free_port

__all__ = ["eventually", "free_port", "reusable_bind", "scrape", "total", "value", "write_section"]


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    """Every sample of the router's /metrics as {(name, sorted labels): value}."""
    with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: dict, name: str, **labels: str) -> float:
    """Sum of a series over the labels not given."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))


def eventually(check: Callable[[], object], timeout: float = 10.0, interval: float = 0.2):
    """Poll `check` until it returns something true or `timeout` passes; a connection error counts as not yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except OSError:
            result = None
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def reusable_bind(port: int) -> socket.socket | None:
    """A listening socket on `port` with SO_REUSEADDR (to hold a restarted server's port), or None if taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        return sock
    except OSError:
        sock.close()
        return None


def write_section(path: Path, start: str, end: str, section: str) -> None:
    """Put `section` (which carries its own `start` and `end` markers) in place of the generated block of a doc
    between those markers, or append it when the doc has no such block yet."""
    text = path.read_text() if path.exists() else ""
    if start in text and end in text:
        text = text[:text.index(start)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)
