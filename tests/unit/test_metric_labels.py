"""One list of label values (metrics.CACHE_LOOKUP_RESULTS) for the code, the docs and the dashboard: the Grafana
hit ratio once matched `hit.*` and so left out `exact_hit`, the commonest hit."""

from __future__ import annotations

import json
import re
from pathlib import Path

from router_extproc.metrics import CACHE_HIT_RESULTS, CACHE_LOOKUP_RESULTS, Metrics

ROOT = Path(__file__).resolve().parents[2]


def _hit_ratio_selector() -> str:
    dash = json.loads((ROOT / "deploy" / "grafana" / "router-extproc.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", []) if "router_cache_lookups_total" in t["expr"]]
    hits = [m for e in exprs for m in re.findall(r'router_cache_lookups_total\{[^}]*result=~"([^"]+)"', e)]
    assert hits, exprs
    return hits[0]


def test_the_dashboard_hit_ratio_counts_every_hit_and_nothing_else():
    selector = re.compile(f"^(?:{_hit_ratio_selector()})$")   # PromQL regexes are anchored
    assert {r for r in CACHE_LOOKUP_RESULTS if selector.match(r)} == set(CACHE_HIT_RESULTS)


def test_the_code_emits_only_listed_results():
    src = "\n".join(p.read_text() for p in (ROOT / "router_extproc").rglob("*.py"))
    emitted = set(re.findall(r'(?:lookup\(|result = |cache_lookups\.labels\()"(\w+)"', src))
    assert emitted and emitted <= set(CACHE_LOOKUP_RESULTS), emitted - set(CACHE_LOOKUP_RESULTS)


def test_docs_and_help_text_name_the_listed_values():
    docs = (ROOT / "docs" / "operations.md").read_text()
    row = next(line for line in docs.splitlines() if line.startswith("| `router_cache_lookups_total`"))
    assert f"`result` ({', '.join(CACHE_LOOKUP_RESULTS)})" in row
    help_text = next(f for f in Metrics().registry.collect() if f.name == "router_cache_lookups").documentation
    assert all(r in help_text for r in CACHE_LOOKUP_RESULTS)


def test_store_results_are_listed_in_code_docs_and_help():
    from router_extproc.metrics import CACHE_STORE_RESULTS

    src = "\n".join(p.read_text() for p in (ROOT / "router_extproc").rglob("*.py"))
    emitted = set(re.findall(r'(?:metrics\.store\(|cache_stores\.labels\()"([\w-]+)"', src))
    keys = (ROOT / "router_extproc" / "cache" / "keys.py").read_text()
    verdict_fn = keys[keys.index("def response_cacheable"):]
    verdicts = set(re.findall(r'return "([\w-]+)"', verdict_fn.split("\ndef ", 1)[0])) - {"ok"}
    emitted |= {f"skipped_{v}" for v in verdicts | {"invalid"}}   # stages/cache.py store: skipped_<verdict>
    assert emitted == set(CACHE_STORE_RESULTS), emitted ^ set(CACHE_STORE_RESULTS)
    docs = (ROOT / "docs" / "operations.md").read_text()
    row = next(line for line in docs.splitlines() if line.startswith("| `router_cache_stores_total`"))
    assert f"`result` ({', '.join(CACHE_STORE_RESULTS)})" in row
