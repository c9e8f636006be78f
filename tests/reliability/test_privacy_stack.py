"""Privacy through the real stack: the real signal engine detects the PII, the router keeps it out of the cache.

(The fast, in-process versions of these checks are in tests/unit/test_privacy.py.)
"""

from __future__ import annotations

import copy
import signal

import pytest
import yaml

from .conftest import PII_CACHED, chat, client

pytestmark = pytest.mark.reliability

# Validated by rules as well as the model (email, SSN with valid ranges, Luhn-valid card): detected whatever the
# state of the NER head.
PII = ["maria.gomez@example.com", "078-05-1120", "4111 1111 1111 1111"]
CLEAN = ["What is the boiling point of water at sea level?", "Name the largest planet in the solar system"]


def test_no_detected_pii_in_the_milvus_lite_file_after_a_run(make_stack, needs_cache, tmp_path, record):
    """Prompts with PII go through Envoy and the router with the real signal engine and a Milvus Lite cache.
    Client sees: 200 for all (every model may receive PII here), x-router-cache: bypass and x-router-pii set on
    the PII prompts. Afterwards (router stopped, so every queued insert is flushed) the Lite file holds the clean
    prompts and no row whose prompt or answer contains any PII string."""
    from pymilvus import MilvusClient

    db = tmp_path / "cache" / "milvus.db"
    backend = tmp_path / "milvus-lite.yaml"
    backend.write_text(yaml.safe_dump({"uri": str(db), "collection": {"name": "privacy_scan"}}))
    cfg = copy.deepcopy(PII_CACHED)
    cfg["semantic_cache"] = {**cfg["semantic_cache"], "backend_type": "milvus", "backend_config_path": str(backend)}
    stack = make_stack(cfg)
    flagged = 0
    sent = 0
    with client(stack) as c:
        for _ in range(2):
            for i, p in enumerate(PII):
                for content in (f"Please email the contract to {p} today", f"My number is {p}, is it valid?"):
                    r = c.post("/v1/chat/completions", json=chat("large", content, temperature=0.2,
                                                                  stream=bool(i % 2)),
                               headers={"authorization": "Bearer pii-tenant"})
                    sent += 1
                    assert r.status_code == 200, r.text
                    assert r.headers["x-router-cache"] == "bypass", (content, dict(r.headers))
                    flagged += bool(r.headers.get("x-router-pii"))
            for content in CLEAN:
                r = c.post("/v1/chat/completions", json=chat("large", content, temperature=0.2),
                           headers={"authorization": "Bearer pii-tenant"})
                sent += 1
                assert r.status_code == 200
    assert stack.stop_process("router", signal.SIGTERM) == 0
    mc = MilvusClient(uri=str(db))
    try:
        mc.load_collection("privacy_scan")
        rows = mc.query("privacy_scan", filter="id >= 0", output_fields=["text", "response"], limit=10_000)
    finally:
        mc.close()
    blob = "\n".join(r["text"] + "\n" + r["response"] for r in rows)
    for c_ in CLEAN:
        assert c_ in blob, "control: the clean prompts were stored, so the scan sees stored rows"
    leaked = [p for p in PII if p in blob]
    assert not leaked, f"PII found in the cache file: {leaked}"
    record("PII kept out of the cache (real signals, Milvus Lite)",
           injected=f"{sent} requests, {sent - 2 * len(CLEAN)} carrying email / SSN / card numbers",
           client_saw=f"all 200; PII prompts x-router-cache: bypass ({flagged} flagged x-router-pii); "
           f"Lite file scanned after shutdown: {len(rows)} rows, 0 containing PII",
           sent=sent, errors=0, lost=0)
