"""When two requests may share a cache entry, and when the cache may be used at all."""

import dataclasses

import pytest

from router_extproc.cache.keys import build_key, decide_policy, normalize_text, response_cacheable, scope_of
from router_extproc.config_cache import SemanticCacheConfig

CFG = SemanticCacheConfig(enabled=True)
H = {"authorization": "Bearer tenant-a"}


def body(q="What is the capital of France?", **kw):
    return {"model": "auto", "messages": [{"role": "user", "content": q}], "temperature": 0.7, **kw}


def key(b=None, model="m1", headers=H, cfg=CFG):
    return build_key(b or body(), model, headers, cfg)


def test_the_same_request_gets_the_same_key():
    assert key() == key()


def test_a_single_turn_request_embeds_just_the_question():
    assert key().text == "What is the capital of France?"


def test_the_semantic_text_is_the_recent_conversation_with_the_last_turn_last():
    b = {"messages": [{"role": "user", "content": "Tell me about Paris"},
                      {"role": "assistant", "content": "Paris is the capital of France."},
                      {"role": "user", "content": "How big is it?"}]}
    t = key(b).text
    assert t.splitlines() == ["user: Tell me about Paris", "assistant: Paris is the capital of France.",
                              "user: How big is it?"]


def test_earlier_turns_change_the_key_so_follow_ups_do_not_collide():
    a = {"messages": [{"role": "user", "content": "Tell me about Paris"},
                      {"role": "assistant", "content": "..."}, {"role": "user", "content": "How big is it?"}]}
    b = {"messages": [{"role": "user", "content": "Tell me about Jupiter"},
                      {"role": "assistant", "content": "..."}, {"role": "user", "content": "How big is it?"}]}
    assert key(a).text != key(b).text and key(a).fingerprint != key(b).fingerprint


@pytest.mark.parametrize("variant", [
    "what is the capital of france",
    "  What   is the capital of France ?? ",
    "WHAT IS THE CAPITAL OF FRANCE?",
    "Ｗhat is the capital of France?",                      # full-width letter (NFKC)
    "What is the capital\u200b of France?",                # zero-width space
    "Please, what is the capital of France?",
    "What is the capital of France? Thanks!",
    "Hi! Can you tell me what is the capital of France?",
    "Could you please tell me: what is the capital of France",
])
def test_trivial_variants_share_the_exact_fingerprint(variant):
    a, b = key(), key(body(variant))
    assert a.fingerprint == b.fingerprint and a.filter_key == b.filter_key
    assert b.text == variant.strip()  # the embedded text is what was sent


@pytest.mark.parametrize("a,b", [
    ("What is 5!", "What is 5"),                       # a factorial, not punctuation
    ('Reverse "Abc"', 'Reverse "abc"'),                # quoted text is verbatim
    ("Uppercase `hello world`", "Uppercase `Hello World`"),
    ("What does US stand for?", "What does us stand for?"),  # an acronym is not a word in capitals
    ("Fix:\n```\nif x:\n    y()\n```", "Fix:\n```\nif x:\ny()\n```"),  # indentation in code
    ("Fix this:\nif x:\n    y()", "Fix this:\nif x:\ny()"),            # ... and outside a fence
    ("What is the capital of France?", "What is the capital of Spain?"),
    ("Is it safe?", "Is it not safe?"),
    ("Hello world in Rust", "world in Rust"),        # a greeting without its comma is part of the request
])
def test_variants_that_can_change_the_answer_do_not(a, b):
    assert key(body(a)).fingerprint != key(body(b)).fingerprint


def test_normalization_reads_only_the_user_s_words():
    sys_a = body(messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    sys_b = body(messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "Hi"}])
    assert key(sys_a).fingerprint != key(sys_b).fingerprint


def test_a_prompt_that_is_only_a_polite_word_is_kept():
    assert normalize_text("Thanks!") == "thanks"
    assert normalize_text("Please") == "please"


def test_the_system_prompt_is_a_hard_filter():
    a = {"messages": [{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "Hi"}]}
    b = {"messages": [{"role": "system", "content": "Answer in English."}, {"role": "user", "content": "Hi"}]}
    assert key(a).filter_key != key(b).filter_key


def test_turns_older_than_the_window_are_a_hard_filter():
    cfg = dataclasses.replace(CFG, context_turns=1)
    a = {"messages": [{"role": "user", "content": "Talk about cats"}, {"role": "assistant", "content": "ok"},
                      {"role": "user", "content": "more"}]}
    b = {"messages": [{"role": "user", "content": "Talk about dogs"}, {"role": "assistant", "content": "ok"},
                      {"role": "user", "content": "more"}]}
    assert key(a, cfg=cfg).text == key(b, cfg=cfg).text == "more"
    assert key(a, cfg=cfg).filter_key != key(b, cfg=cfg).filter_key


@pytest.mark.parametrize(
    "extra",
    [
        {"tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]},
        {"tool_choice": "required"},
        {"response_format": {"type": "json_object"}},
        {"seed": 7},
        {"max_tokens": 5000},
        {"stop": ["\n"]},
        {"logprobs": True},
    ],
)
def test_hard_filters_separate_entries(extra):
    assert key(body(**extra)).filter_key != key().filter_key


# Fields that change the answer and were missing from the old fixed list: a request asking for JSON shaped by a
# schema got an exact hit on another request's free text.
@pytest.mark.parametrize("extra", [
    {"guided_json": {"type": "object", "properties": {"city": {"type": "string"}}}},
    {"guided_choice": ["yes", "no"]},
    {"guided_regex": "[A-Z]+"},
    {"structured_outputs": {"choice": ["yes", "no"]}},
    {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}},
    {"extra_body": {"guided_json": {"type": "object"}}},
    {"chat_template_kwargs": {"enable_thinking": False}},
    {"documents": [{"title": "t", "text": "Paris is in Italy."}]},
    {"reasoning": {"effort": "high"}},
    {"top_k": 5},
    {"min_p": 0.1},
    {"a_field_invented_next_year": 1},
])
def test_every_field_that_can_change_the_answer_separates_entries(extra):
    assert key(body(**extra)).filter_key != key().filter_key
    assert key(body(**extra)).fingerprint != key().fingerprint


@pytest.mark.parametrize("extra", [
    {"stream": True}, {"stream_options": {"include_usage": True}}, {"user": "u-1"}, {"metadata": {"k": "v"}},
    {"store": False}, {"service_tier": "auto"}, {"safety_identifier": "s"}, {"prompt_cache_key": "p"},
])
def test_transport_and_bookkeeping_fields_share_the_entry(extra):
    assert key(body(**extra)) == key()


@pytest.mark.parametrize("extra", [
    {"tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]},
    {"functions": [{"name": "get_weather", "parameters": {}}]},
    {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}},
    {"response_format": {"type": "json_object"}},
    {"guided_json": {"type": "object"}},
    {"guided_choice": ["a", "b"]},
    {"structured_outputs": {"json": {}}},
    {"extra_body": {"guided_regex": "x"}},
])
def test_tool_calls_and_structured_outputs_get_exact_hits_only(extra):
    assert key(body(**extra)).exact_only
    assert not key().exact_only
    assert not key(body(response_format={"type": "text"})).exact_only


def test_the_chosen_model_separates_entries():
    assert key(model="m1").filter_key != key(model="m2").filter_key


def test_max_tokens_within_one_tier_share_the_filter_but_not_the_fingerprint():
    a, b = key(body(max_tokens=100)), key(body(max_tokens=200))
    assert a.filter_key == b.filter_key and a.fingerprint != b.fingerprint


def test_temperature_changes_the_fingerprint_but_not_the_filter():
    a, b = key(body(temperature=0.2)), key(body(temperature=0.7))
    assert a.filter_key == b.filter_key and a.fingerprint != b.fingerprint


def test_images_are_a_hard_filter_not_text():
    def img(url):
        return {"messages": [{"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                                          {"type": "image_url", "image_url": {"url": url}}]}]}
    a, b = key(img("http://x/1.png")), key(img("http://x/2.png"))
    assert a.text == b.text == "What is this?" and a.filter_key != b.filter_key


def test_tenants_are_isolated_by_the_authorization_header():
    a = key(headers={"Authorization": "Bearer tenant-a"})
    b = key(headers={"Authorization": "Bearer tenant-b"})
    assert a.scope != b.scope and a.fingerprint != b.fingerprint
    assert len(a.scope) == 32


def test_no_scope_header_means_the_anonymous_scope():
    assert key(headers={}).scope == "anon"


def test_anonymous_requests_are_not_cached_unless_the_operator_opts_in():
    # Without a scope header every client shared one "anon" scope: one client's answers served to all.
    p = policy(headers={})
    assert not p.lookup and not p.store and p.reason == "anonymous"
    assert policy(headers={}, cfg=dataclasses.replace(CFG, cache_anonymous=True)).reason == "ok"


def test_an_api_key_header_can_be_the_scope():
    cfg = dataclasses.replace(CFG, scope_headers=("x-api-key",))
    a = key(headers={"x-api-key": "k1"}, cfg=cfg)
    assert a.scope not in ("anon", key(headers={"x-api-key": "k2"}, cfg=cfg).scope)
    assert policy(headers={"x-api-key": "k1"}, cfg=cfg).reason == "ok"
    assert policy(headers=H, cfg=cfg).reason == "anonymous"


def test_scope_headers_are_configurable():
    cfg = dataclasses.replace(CFG, scope_headers=("x-tenant-id",))
    assert scope_of({"X-Tenant-Id": "t1", "authorization": "x"}, cfg.scope_headers) != scope_of(
        {"X-Tenant-Id": "t2", "authorization": "x"}, cfg.scope_headers)
    assert scope_of({"authorization": "x"}, cfg.scope_headers) == "anon"


# ---------------------------------------------------------------- policy

def policy(b=None, headers=H, cfg=CFG, pii=False):
    return decide_policy(b or body(), headers, cfg, has_pii=pii)


def test_the_seed_flow_at_temperature_0_7_is_cached():
    p = policy()
    assert p.lookup and p.store and p.reason == "ok"


def test_a_missing_temperature_means_1_0_which_the_default_policy_still_caches():
    b = body()
    del b["temperature"]
    assert policy(b).store
    cfg = dataclasses.replace(CFG, max_temperature=0.5)
    assert policy(b, cfg=cfg).reason == "temperature"


def test_requests_above_the_max_temperature_are_not_cached():
    p = policy(body(temperature=1.5))
    assert not p.lookup and not p.store and p.reason == "temperature"


def test_no_cache_skips_lookup_but_still_stores():
    p = policy(headers={**H, "Cache-Control": "no-cache"})
    assert not p.lookup and p.store and p.reason == "no-cache"


def test_no_store_skips_storing_but_still_looks_up():
    p = policy(headers={**H, "cache-control": "max-age=0, no-store"})
    assert p.lookup and not p.store and p.reason == "no-store"


def test_prompts_with_pii_are_never_stored_or_looked_up():
    p = policy(pii=True)
    assert not p.lookup and not p.store and p.reason == "pii"


def test_n_greater_than_one_is_not_cached():
    assert policy(body(n=3)).reason == "n>1"


def test_a_disabled_cache_does_nothing():
    assert policy(cfg=SemanticCacheConfig(enabled=False)).reason == "disabled"


# ---------------------------------------------------------------- responses

def completion(finish="stop", content="Paris."):
    return {"id": "x", "object": "chat.completion", "created": 1, "model": "m1",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}]}


def test_a_finished_2xx_completion_is_cacheable():
    assert response_cacheable(200, completion()) == "ok"


@pytest.mark.parametrize("status", [400, 429, 500, 503])
def test_non_2xx_responses_are_never_stored(status):
    assert response_cacheable(status, completion()) == "status"


def test_truncated_or_filtered_answers_are_not_stored():
    assert response_cacheable(200, completion(finish="length")) == "incomplete"
    assert response_cacheable(200, completion(finish=None)) == "incomplete"


def test_answers_over_the_size_limit_are_not_stored():
    assert response_cacheable(200, completion(content="x" * 2000), max_bytes=1000) == "too-large"


# --- hostile text: the exact tier's normalisation reads the whole prompt, so it must be linear in it -------------

@pytest.mark.parametrize("text, want", [
    ("x" + " \n" * 60 + "y", "x" + "\n" * 60 + "y"),   # a nested-quantifier regex never returned here
    ("What is 5!  \n  ", "what is 5!"),
    ("what is rust?? thanks , please !", "what is rust"),
    ("Spell it , , please", "spell it"),
    ("pretty", "pretty"),                                          # "ty" only as a word
])
def test_trailing_wrappers_are_peeled_in_one_pass(text, want):
    from router_extproc.cache.keys import normalize_text
    assert normalize_text(text) == want


def test_megabytes_of_unclosed_quotes_acronyms_and_indentation_normalise():
    from router_extproc.cache.keys import normalize_text
    for unit in ("\u201c", "US a ", "\n" + " " * 30, " thanks", "'a "):
        text = "x" + unit * (2_000_000 // len(unit)) + "y"
        assert normalize_text(text)   # each was quadratic or worse before (minutes to hours at this size)
