"""The Grafana dashboard's queries, rendered against a scrape of a real stack (Envoy + router with signals and the
cache + demo upstreams, after traffic that hits, misses, falls back and counts tokens): every series selector of every
panel selects samples wherever its metric has any, so no panel is silently empty because it names a label value the
router does not emit (the hit ratio once matched `hit.*` and left out `exact_hit`)."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from .conftest import ROOT, client, needs_models

pytestmark = needs_models

_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}")
_MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def _samples(text: str) -> list[tuple[str, dict[str, str]]]:
    return [(s.name, dict(s.labels)) for fam in text_string_to_metric_families(text) for s in fam.samples]


def _selects(matchers: str, labels: dict[str, str]) -> bool:
    for name, op, value in _MATCHER.findall(matchers):
        if name == "job":   # the dashboard's variable: Prometheus adds the label, a raw scrape has none
            continue
        have = labels.get(name, "")
        value = value.encode().decode("unicode_escape")
        ok = {"=": have == value, "!=": have != value, "=~": re.fullmatch(value, have) is not None,
              "!~": re.fullmatch(value, have) is None}[op]
        if not ok:
            return False
    return True


@pytest.fixture(scope="module")
def scraped(make_stack):
    data = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    data["signals"]["jailbreak"] = False
    data["semantic_cache"].update(ttl_seconds=3600)
    data["usage"] = {"enabled": True}
    stack = make_stack(data)
    with client(stack, headers={"authorization": "Bearer tenant-a"}) as c:
        body = {"model": "auto", "messages": [{"role": "user", "content": "What is the capital of France?"}],
                "temperature": 0.7}
        for _ in range(3):   # a miss, then exact hits
            assert c.post("/v1/chat/completions", json=body).status_code == 200
        stream = {**body, "stream": True, "messages": [{"role": "user", "content": "Name three prime numbers."}]}
        with c.stream("POST", "/v1/chat/completions", json=stream) as r:
            assert r.status_code == 200 and "[DONE]" in "".join(r.iter_text())
        return c.get(stack.metrics_url + "/metrics").text


def test_every_dashboard_selector_selects_samples_where_its_metric_has_any(scraped):
    samples = _samples(scraped)
    present = {name for name, _ in samples}
    dash = json.loads((ROOT / "deploy" / "grafana" / "router-extproc.json").read_text())
    empty, checked = [], 0
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            for metric, matchers in _SELECTOR.findall(target["expr"]):
                if metric not in present:
                    continue   # nothing of it happened in this traffic (errors, reloads, fallbacks)
                checked += 1
                if not any(n == metric and _selects(matchers, labels) for n, labels in samples):
                    empty.append((panel["title"], metric, matchers))
    assert checked >= 15
    assert not empty, empty


def test_the_hit_ratio_counts_the_exact_hits(scraped):
    hits = [labels for name, labels in _samples(scraped)
            if name == "router_cache_lookups_total" and labels.get("result") == "exact_hit"]
    assert hits, "the traffic produced exact hits"
    dash = json.loads((ROOT / "deploy" / "grafana" / "router-extproc.json").read_text())
    ratio = next(t["expr"] for p in dash["panels"] for t in p.get("targets", []) if "result=~" in t["expr"])
    numerator = _SELECTOR.findall(ratio)[0][1]
    assert _selects(numerator, {"result": "exact_hit"})
