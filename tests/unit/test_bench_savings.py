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


# ---- the cost-optimised example's decisions (config/examples/cost-fleet.yaml) --------------------------------

def _decide(content, **signals):
    import json

    from router_extproc.config import load_config
    from router_extproc.decision import decide
    from router_extproc.openai import parse_chat_request

    from .test_decision import FakeSignals

    cfg = load_config(bs.COST_FLEET)
    request = parse_chat_request(json.dumps({"model": "auto",
                                             "messages": [{"role": "user", "content": content}]}).encode())
    d = decide(cfg, request, FakeSignals(**signals))
    return d.rule, d.model


def test_cost_fleet_sends_each_prompt_to_the_cheapest_model_able_to_serve_it():
    long_q = "Explain the derivation below. " * 100
    assert _decide("Prove the sum of two odd numbers is even " + long_q, category="math", complexity=0.9) == \
        ("reasoning", "large")
    assert _decide("Compare the two legal doctrines " + long_q, category="law", complexity=0.9) == ("complex", "mid")
    assert _decide("What's the capital of Italy?", category="history", complexity=0.9) == ("complex", "mid")
    assert _decide("Hi there!", category="other", complexity=0.1) == ("short", "tiny")
    assert _decide("Tell me about the history of the printing press " + long_q, category="history",
                   complexity=0.1) == ("simple", "tiny")
    assert _decide("word " * 100_000, category="history", complexity=0.9) == ("long-context", "long")


def test_cost_fleet_moves_pii_past_the_tiny_model():
    assert _decide("Hi, I'm Sam Jones", category="other", complexity=0.1, pii=frozenset({"PERSON"})) == \
        ("short", "mid")
