"""Tokens, cost, TTFT/TPOT and token budgets, read from the answers the router taps (issue #25).

- Usage comes from the upstream's own `usage` object: the JSON answer's, or a stream's final chunk. A stream whose
  client did not ask for `stream_options.include_usage` gets it asked for on its behalf, and the usage-only chunk is
  taken out again of what the client receives (`SSEUsage`).
- TTFT: request forwarded → first content chunk of a stream. TPOT: the rest of the stream over the completion tokens
  after the first.
- Tenants are the hashed value of `usage.tenant_header` (never the value itself), and at most `usage.max_tenants`
  distinct ones get their own label; the others count as "other" (bounded label cardinality).
- Budgets: tokens per tenant per fixed window (`usage.budget_tokens`, `usage.budget_window_s`); a tenant over it gets
  429 in OpenAI's shape with `retry-after` until the window ends. Counts are per router process (each worker its
  own), and an answer's tokens count when it ends: a burst of concurrent requests can overshoot by what they use.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config_reader import Reader

OTHER = "other"
NONE = "none"
_EMPTY_CONTENT = re.compile(rb'"content":\s*(""|null)')


@dataclass(frozen=True, slots=True)
class UsageConfig:
    enabled: bool = False                 # taps every chat answer (a gRPC message per response chunk): opt in
    tenant_header: str = "authorization"
    max_tenants: int = 100
    include_usage: bool = True            # ask streams for their usage when the client did not (and strip it)
    prices: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # model → (prompt, completion) per 1M
    budget_tokens: int = 0                # per tenant per window; 0: no budget
    budget_window_s: float = 3600.0


def parse(root: Reader, model_names: list[str]) -> UsageConfig:
    """The top-level `usage` section (every key optional)."""
    r = root.section("usage")
    d = UsageConfig()
    pr = r.section("prices")
    prices: dict[str, tuple[float, float]] = {}
    for name in pr.data:
        if name not in model_names:
            raise pr.error(pr.key(name), f"unknown model; configured: {', '.join(model_names)}")
        p = pr.section(name)
        prices[name] = (p.float("prompt_per_1m", 0.0, lo=0), p.float("completion_per_1m", 0.0, lo=0))
        p.check_unknown()
    out = UsageConfig(
        enabled=r.bool("enabled", d.enabled),
        tenant_header=r.str("tenant_header", d.tenant_header).lower(),
        max_tenants=r.int("max_tenants", d.max_tenants, minimum=1),
        include_usage=r.bool("include_usage", d.include_usage),
        prices=prices,
        budget_tokens=r.int("budget_tokens", d.budget_tokens, minimum=0),
        budget_window_s=r.float("budget_window_s", d.budget_window_s, lo=1),
    )
    r.check_unknown()
    return out


@dataclass(slots=True)
class Usage:
    prompt: int = 0
    completion: int = 0


def read_usage(obj: Any) -> Usage | None:
    u = obj.get("usage") if isinstance(obj, dict) else None
    if not isinstance(u, dict):
        return None
    p, c = u.get("prompt_tokens", u.get("input_tokens")), u.get("completion_tokens", u.get("output_tokens"))
    if not isinstance(p, int) or not isinstance(c, int) or isinstance(p, bool) or isinstance(c, bool):
        return None
    return Usage(max(0, p), max(0, c))


class SSEUsage:
    """Reads a stream's events as they pass: the first content chunk's time and the final usage; with `strip`, the
    usage-only chunk the router asked for is removed (complete events only are passed on, the rest waits for the next
    chunk)."""

    def __init__(self, strip: bool, clock: Callable[[], float] = time.perf_counter) -> None:
        self.strip = strip
        self.clock = clock
        self.first_token_at: float | None = None
        self.last_token_at: float | None = None
        self.usage: Usage | None = None
        self._buf = b""

    def feed(self, chunk: bytes, end: bool) -> bytes | None:
        """The bytes to send on in place of `chunk` (None: unchanged)."""
        *complete, rest = (self._buf + chunk).split(b"\n\n")
        self._buf = rest
        kept = [ev for ev in complete if self._event(ev) or not self.strip]
        tail = b""
        if end:
            self._buf, tail = b"", rest
            if rest.strip():
                self._event(rest)
        if not self.strip:
            return None
        return b"".join(ev + b"\n\n" for ev in kept) + tail

    def _event(self, ev: bytes) -> bool:
        """Reads one event; whether it goes on to the client."""
        line = next((x for x in ev.split(b"\n") if x.startswith(b"data:")), None)
        if line is None:
            return True
        payload = line[5:].strip()
        if b'"content"' in payload and not _EMPTY_CONTENT.search(payload):
            now = self.clock()
            self.first_token_at = self.first_token_at or now
            self.last_token_at = now
        if b'"usage"' not in payload:   # most chunks: no JSON parse
            return True
        try:
            obj = json.loads(payload)
        except ValueError:
            return True
        usage = read_usage(obj)
        if usage is None:
            return True
        self.usage = usage
        # the usage-only chunk (no choices) is the one include_usage added
        return not (self.strip and obj.get("choices") == [])


class Accounting:
    """Per-process token counts per tenant and window (budgets), and the bounded tenant labels."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._labels: dict[str, str] = {}
        self._windows: dict[str, tuple[int, int]] = {}   # tenant hash → (window index, tokens)

    @staticmethod
    def tenant(headers: Mapping[str, str], cfg: UsageConfig) -> str:
        value = headers.get(cfg.tenant_header, "")
        return hashlib.sha256(value.encode()).hexdigest()[:12] if value else NONE

    def label(self, tenant: str, cfg: UsageConfig) -> str:
        known = self._labels.get(tenant)
        if known is not None:
            return known
        if len(self._labels) >= cfg.max_tenants:
            return OTHER
        self._labels[tenant] = tenant
        return tenant

    def over_budget(self, tenant: str, cfg: UsageConfig) -> float | None:
        """Seconds until the tenant's window ends when it is over budget, else None."""
        if cfg.budget_tokens <= 0:
            return None
        now = self._clock()
        index = int(now // cfg.budget_window_s)
        w = self._windows.get(tenant)
        if w is None or w[0] != index or w[1] < cfg.budget_tokens:
            return None
        return (index + 1) * cfg.budget_window_s - now

    def add(self, tenant: str, tokens: int, cfg: UsageConfig) -> None:
        if cfg.budget_tokens <= 0:
            return
        index = int(self._clock() // cfg.budget_window_s)
        w = self._windows.get(tenant)
        used = w[1] if w is not None and w[0] == index else 0
        self._windows[tenant] = (index, used + tokens)
        if len(self._windows) > 100_000:   # bound memory: drop tenants of past windows
            self._windows = {k: v for k, v in self._windows.items() if v[0] == index}


def cost(cfg: UsageConfig, model: str, usage: Usage) -> float:
    p, c = cfg.prices.get(model, (0.0, 0.0))
    return (usage.prompt * p + usage.completion * c) / 1_000_000


def ask_for_usage(body: dict[str, Any]) -> bool:
    """Sets stream_options.include_usage on a stream that lacks it; True when it did (the chunk is then stripped)."""
    if not body.get("stream"):
        return False
    opts = body.get("stream_options")
    if isinstance(opts, dict) and opts.get("include_usage"):
        return False
    body["stream_options"] = {**(opts if isinstance(opts, dict) else {}), "include_usage": True}
    return True


# ── what the stages call (their `# live:` lines) ───────────────────────────────────────────────────
class UsageHooks:
    """The token-accounting steps of the stages (act.forward, tap), and the budget check the pipeline makes before
    forwarding. `ex` is the stages' Exchange (fields: config, headers, decision, path, redaction, tenant, strip_usage,
    usage_tap, forwarded_at)."""

    def __init__(self, metrics: Any, live: Any) -> None:
        self.metrics = metrics
        self.live = live                   # live.LiveState: tokens/s per model
        self.accounting = Accounting()

    def over_budget(self, ex: Any) -> tuple[Any, dict[str, str]] | None:
        """(the 429 APIError, its headers) when the request's tenant has spent its budget, else None."""
        cfg = ex.config.usage
        if not cfg.enabled:
            return None
        ex.tenant = Accounting.tenant(ex.headers, cfg)
        wait = self.accounting.over_budget(ex.tenant, cfg)
        if wait is None:
            return None
        from .openai import APIError

        self.metrics.budget_rejections.labels(self.accounting.label(ex.tenant, cfg)).inc()
        seconds = str(math.ceil(wait))
        return (APIError(429, f"Token budget exhausted for this window; retry in {seconds} s", type="rate_limit_error",
                         code="token_budget_exceeded"), {"retry-after": seconds})

    @staticmethod
    def ask(ex: Any, body: dict[str, Any], chat: bool) -> None:
        """A chat stream reports its usage only when asked (a redacted one is left alone: its restorer owns the body)."""
        cfg = ex.config.usage
        if cfg.enabled and cfg.include_usage and chat and ex.redaction is None:
            ex.strip_usage = ask_for_usage(body)

    @staticmethod
    def on_headers(ex: Any, headers: Mapping[str, str], ok: bool) -> tuple[str, ...] | None:
        """Starts reading the answer; the headers to remove (None: not read)."""
        if not (ok and ex.chat and ex.decision is not None and ex.config.usage.enabled):
            return None
        sse = "text/event-stream" in headers.get("content-type", "")
        ex.usage_tap = SSEUsage(ex.strip_usage) if sse else bytearray()
        return ("content-length",) if ex.strip_usage else ()

    def on_body(self, ex: Any, chunk: bytes, end: bool) -> bytes | None:
        """Reads a chunk (returns its replacement when the usage chunk is stripped); at the end, counts the tokens,
        cost, TTFT/TPOT, the tenant's budget and the model's tokens/s."""
        tap, cfg = ex.usage_tap, ex.config.usage
        out = None
        if isinstance(tap, bytearray):
            if len(tap) + len(chunk) <= ex.config.server.max_body_bytes:
                tap += chunk
        else:
            out = tap.feed(chunk, end)
        if not end:
            return out
        ex.usage_tap = None
        d = ex.decision
        if isinstance(tap, bytearray):
            try:
                usage = read_usage(json.loads(bytes(tap)))
            except (ValueError, RecursionError):
                usage = None
        else:
            usage = tap.usage
            if tap.first_token_at is not None and ex.forwarded_at is not None:
                self.metrics.ttft_seconds.labels(d.model).observe(tap.first_token_at - ex.forwarded_at)
                if usage is not None and usage.completion > 1:
                    self.metrics.tpot_seconds.labels(d.model).observe(
                        (tap.last_token_at - tap.first_token_at) / (usage.completion - 1))
        if usage is None or d is None:
            return out
        kind = "auto" if d.auto else "explicit"
        tenant = ex.tenant or Accounting.tenant(ex.headers, cfg)
        label = self.accounting.label(tenant, cfg)
        self.metrics.tokens.labels(d.model, kind, label, "prompt").inc(usage.prompt)
        self.metrics.tokens.labels(d.model, kind, label, "completion").inc(usage.completion)
        self.metrics.cost.labels(d.model, kind, label).inc(cost(cfg, d.model, usage))
        self.accounting.add(tenant, usage.prompt + usage.completion, cfg)
        if ex.forwarded_at is not None:   # the live window's tokens/s (forwarded → last byte)
            self.live.generation(ex.config.live, d.model, usage.completion, time.perf_counter() - ex.forwarded_at)
        return out
