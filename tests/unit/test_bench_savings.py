"""The savings report's costing (tests/bench/bench_savings.py): cost comes from each fleet's `models[].cost`,
only served requests are costed, and the cost-optimised example is the config the bench replays."""
from __future__ import annotations

from router_extproc.config import parse_config
from tests.bench import bench_savings as bs

COSTS = {"tiny": 1.0, "mid": 3.0, "large": 8.0}


def row(model, *, status=200, category=None, routed=None, complex=None, source="simple", blocked=None,
        decision=None):
    return {"text": "x", "category": category, "routed_category": routed, "source": source, "complex": complex,
            "status": status, "model": model, "blocked": blocked, "decision": decision}


def test_cost_per_1k_reads_the_configured_costs_of_served_requests():
    results = [row("tiny", complex=0), row("tiny", complex=0), row("large", complex=1), row("mid"),
               row(None, status=403, blocked="pii")]
    s = bs.policy_summary(results, COSTS)
    assert s["served"] == 4 and s["prompts"] == 5 and s["blocked"] == 1
    assert s["cost_ours"] == 1 + 1 + 8 + 3
    assert s["cost_per_1k"] == 1000 * 13 / 4
    assert s["cost_per_1k_always_largest"] == 8000 and s["cost_per_1k_always_smallest"] == 1000
    assert s["cost_vs_largest"] == round(13 / 32, 3)
    assert s["share"] == {"tiny": 0.5, "large": 0.25, "mid": 0.25}
    assert (s["largest"], s["smallest"]) == ("large", "tiny")


def test_quality_proxies_count_complex_and_simple_prompts_per_model():
    results = [row("tiny", complex=1), row("large", complex=1), row("large", complex=1), row("tiny", complex=0),
               row("mid", complex=0, category="math", routed="math", source="mmlu-test", decision="technical")]
    s = bs.policy_summary(results, COSTS)
    assert s["complex_sent_to_small"] == round(1 / 3, 3)
    assert s["complex_sent_to_large"] == round(2 / 3, 3)
    assert s["simple_sent_to_small"] == 0.5
    assert s["category_accuracy"] == 1.0 and s["category_accuracy_by_source"] == {"mmlu-test": 1.0}
    assert s["decisions"] == {"technical": 1}


def test_nothing_served_gives_no_ratios():
    s = bs.policy_summary([row(None, status=503)], COSTS)
    assert s["served"] == 0 and s["cost_per_1k"] is None and s["category_accuracy"] is None


def test_the_cost_fleet_replayed_is_the_example_with_cache_off():
    data = bs.cost_fleet_config()
    costs = bs.costs_of(data)
    assert len(costs) >= 3 and len(set(costs.values())) >= 3
    assert data["semantic_cache"]["enabled"] is False
    cfg = parse_config(data, source=bs.COST_FLEET)
    assert any(r.action.select == "cheapest" for r in cfg.decisions.rules)
