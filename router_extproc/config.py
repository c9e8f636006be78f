"""Router configuration: typed, immutable, validated at load.

Every error names the file and the dotted key, so `router-extproc validate-config` and a rejected hot
reload both tell an operator exactly what to fix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import yaml

from . import config_live
from .config_live import LiveConfig, ResilienceConfig  # live: envoy.resilience, live, models[].endpoints
from .config_reader import Reader as _Reader
from .errors import ConfigError
from .tracing import TracingConfig, parse as tracing_section  # live: the `tracing` section
from .usage import UsageConfig, parse as usage_section  # live: the `usage` section
from .pii import taxonomy
from .openai import MODELS_PATH, ROUTED_PATHS
from .signals.inputs import INJECTION_ACTIONS, ROLES, InputRule

T = TypeVar("T")

REASONING_FAMILIES = ("qwen3", "deepseek", "gpt-oss", "openai", "none")
REASONING_EFFORTS = ("low", "medium", "high")
CATEGORIES = (
    "biology", "business", "chemistry", "computer science", "economics", "engineering", "health",
    "history", "law", "math", "other", "philosophy", "physics", "psychology",
)
# The signal model's PII head labels (its training data); the rules add the rest of pii/taxonomy.ALL_TYPES.
PII_TYPES = (
    "PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS",
    "STREET_ADDRESS",
)
PII_ACTIONS = ("route", "block", "redact")


def _hostport(r: _Reader, name: str, default: Any = ...) -> tuple[str, int]:
    value = r.str(name, default)
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise r.error(r.key(name), f"must be host:port, got {value!r}")
    return host, int(port)


def _passthrough_paths(r: _Reader) -> tuple[str, ...]:
    paths = r.str_list("passthrough_paths", [])
    for p in paths:
        if not p.startswith("/") or "?" in p or "#" in p:
            raise r.error(r.key("passthrough_paths"), f"{p!r} must be a path starting with / (no query)")
        prefix = p[:-1] if p.endswith("*") else None
        guarded = [g for g in (*ROUTED_PATHS, MODELS_PATH) if g == p or (prefix is not None and g.startswith(prefix))]
        if guarded:
            raise r.error(r.key("passthrough_paths"), f"{p!r} would cover {guarded[0]}, which the router guards")
    return paths


@dataclass(frozen=True, slots=True)
class ServerConfig:
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9190
    max_body_bytes: int = 8 * 1024 * 1024
    grace_period_s: float = 10.0
    workers: int = 1
    # Open ext_proc streams (HTTP requests in flight, upstream wait included) one process serves; beyond it
    # gRPC refuses the stream and Envoy answers 500 (or forwards unguarded with failure_mode_allow).
    max_concurrent_rpcs: int = 1024
    # The ops server's /admin/cache/* endpoints: with a token (env ROUTER_EXTPROC_ADMIN_TOKEN or this file) every
    # caller must present it; without one only loopback peers are served.
    admin_token_file: str | None = None

    @property
    def grpc_address(self) -> str:
        return f"{self.grpc_host}:{self.grpc_port}"


@dataclass(frozen=True, slots=True)
class EnvoyConfig:
    listen_host: str = "127.0.0.1"
    listen_port: int = 8801
    admin_host: str = "127.0.0.1"
    admin_port: int = 9901
    # Where Envoy reaches the router; defaults to server.grpc_listen.
    router_host: str = "127.0.0.1"
    router_port: int = 50051
    message_timeout_ms: int = 5000
    failure_mode_allow: bool = False
    upstream_timeout_s: float = 300.0
    # Paths Envoy forwards to the default model without the router (exact, or a prefix when ending in "*").
    # Every other path that the router does not understand is refused with 404.
    passthrough_paths: tuple[str, ...] = ()
    max_downstream_connections: int = 10_000
    resilience: ResilienceConfig = ResilienceConfig()   # live: retries, outlier detection, health checks, breakers

    def passes_through(self, path: str) -> bool:
        """Whether `passthrough_paths` forwards this (canonical) path: the one reading of that key, for the Envoy
        routes and for the router, which sees such a path only where Envoy did not switch it off (a gateway)."""
        return any(path.startswith(p[:-1]) if p.endswith("*") else path == p for p in self.passthrough_paths)


@dataclass(frozen=True, slots=True)
class ModelConfig:
    name: str                     # what clients ask for and what the router reports
    served_name: str              # what the upstream server expects in `model`
    host: str
    port: int
    family: str = "none"
    cost: float = 1.0
    pii_allow: frozenset[str] = frozenset({"*"})   # PII types this model may receive; "*" = any
    description: str = ""
    endpoints: tuple[tuple[str, int], ...] = ()    # live: every replica (host, port); empty: (host, port) alone

    @property
    def replicas(self) -> tuple[tuple[str, int], ...]:
        return self.endpoints or ((self.host, self.port),)

    @property
    def cluster(self) -> str:
        return "model_" + "".join(c if c.isalnum() else "_" for c in self.name)

    def allows_pii(self, types: frozenset[str]) -> bool:
        return "*" in self.pii_allow or types <= self.pii_allow


@dataclass(frozen=True, slots=True)
class CategoryRoute:
    name: str
    model_scores: tuple[tuple[str, float], ...]   # best first
    use_reasoning: bool = False
    reasoning_effort: str | None = None


@dataclass(frozen=True, slots=True)
class ComplexityRule:
    enabled: bool = True
    threshold: float = 0.5
    simple_model: str | None = None     # prompts below threshold go here (when the category allows)
    complex_model: str | None = None


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    confidence_threshold: float = 0.5
    fallback_category: str = "other"
    categories: tuple[CategoryRoute, ...] = ()
    complexity: ComplexityRule = ComplexityRule()

    def category(self, name: str) -> CategoryRoute | None:
        return next((c for c in self.categories if c.name == name), None)


@dataclass(frozen=True, slots=True)
class GuardsConfig:
    jailbreak_enabled: bool = True
    jailbreak_threshold: float | None = None   # None: the threshold shipped with the model
    pii_enabled: bool = True
    block_response: str = "error"               # error (HTTP 403) | completion (200, finish_reason=content_filter)
    # an instruction found in a tool result or document (see docs/operations.md for why flag is the default)
    injection_enabled: bool = True
    injection_action: str = "flag"              # flag (header, log, metric) | block | route (to injection_model)
    injection_model: str | None = None


@dataclass(frozen=True, slots=True)
class PIIConfig:
    """What each detected PII type does. `route`: only models whose pii_allow covers it may receive the request;
    `block`: refused whatever the model; `redact`: replaced by a typed placeholder in what is forwarded (the
    model then need not accept it), and restored in the answer when `restore` is on."""

    default_action: str = "route"
    actions: Mapping[str, str] = field(default_factory=dict)   # type -> action, groups already expanded
    ignore: frozenset[str] = frozenset()                         # types never reported
    restore: bool = True

    def action(self, pii_type: str) -> str:
        return self.actions.get(pii_type, self.default_action)

    @property
    def redact_types(self) -> frozenset[str]:
        return frozenset(t for t in taxonomy.ALL_TYPES if self.action(t) == "redact") - self.ignore


@dataclass(frozen=True, slots=True)
class SignalsConfig:
    model_dir: Path = Path("models/dist")
    device: str = "auto"
    max_batch_size: int = 16
    max_wait_ms: float = 0.0
    max_tokens: int = 512
    max_queue: int = 128         # prompts waiting for the encoder; beyond it requests get 503 router_overloaded
    threads: int = 0
    # onnxruntime's pool threads busy-wait between operators (its default). Measured on 2 shared cores, turning
    # that off cost more than it saved: every operator then wakes a sleeping thread (50 tokens 5-7 -> 8.5 ms alone,
    # miss path through Envoy 9.4-11.3 -> 12.1-13.1 ms). Turn it off where the router's cores are oversubscribed.
    spin: bool = True
    # whether those threads go on busy-waiting after a run returns (onnxruntime's default) or stop at once. Spinning
    # after a run burnt 8.3 ms of CPU per verified semantic hit on 2 cores (docs/cache.md, latency), beside the
    # event loop and Envoy; stopping keeps the spin between a run's operators, where it pays.
    spin_after_run: bool = False
    category: bool = True
    complexity: bool = True
    jailbreak: bool = True
    pii: bool = True
    inputs: InputRule = InputRule()   # which text each signal reads, and the token budget (signals/inputs.py)

    @property
    def any_enabled(self) -> bool:
        return self.category or self.complexity or self.jailbreak or self.pii


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: str = "info"
    log_prompts: bool = False    # prompt text appears only at debug level and only when true


@dataclass(frozen=True)
class RouterConfig:
    source: Path
    models: tuple[ModelConfig, ...]
    default_model: str
    auto_model_names: tuple[str, ...] = ("auto", "MoM")
    route_header: str = "x-selected-model"
    server: ServerConfig = ServerConfig()
    envoy: EnvoyConfig = EnvoyConfig()
    signals: SignalsConfig = SignalsConfig()
    routing: RoutingConfig = RoutingConfig()
    guards: GuardsConfig = GuardsConfig()
    logging: LoggingConfig = LoggingConfig()
    pii: PIIConfig = PIIConfig()
    semantic_cache: Any = None     # config_cache.SemanticCacheConfig
    decisions: Any = None          # rules.RuleSet (config_rules.py); None: the `routing:` section decides
    live: LiveConfig = LiveConfig()  # live: per-model health, latency and errors (config_live.py)
    usage: Any = UsageConfig()       # live: usage.UsageConfig (tokens, cost, budgets)
    tracing: Any = TracingConfig()   # live: tracing.TracingConfig (OpenTelemetry, off by default)
    _by_name: dict[str, ModelConfig] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_name.update({m.name: m for m in self.models})

    @cached_property
    def rules(self) -> Any:
        """The rule set every auto request is decided by (rules.RuleSet): the operator's `decisions:`, else the
        `routing:` section read as an equivalent one (config_rules.legacy_rules). Built once per config object;
        `dataclasses.replace` makes a new object, so a changed routing section is never read through stale rules."""
        from .config_rules import legacy_rules  # the rules' parser lives beside this module

        return self.decisions if self.decisions is not None else legacy_rules(self)

    def model(self, name: str) -> ModelConfig | None:
        return self._by_name.get(name)

    def is_auto(self, name: str) -> bool:
        return name in self.auto_model_names


def _input_rule(sg: _Reader, gd: _Reader, pi: _Reader) -> InputRule:
    """signals.* (topic and budget), guards.*.roles and pii.operator_roles: the InputRule's defaults are the
    documented ones."""
    d = InputRule()
    jb, inj = _guard_section(gd, "jailbreak"), _guard_section(gd, "injection")
    return InputRule(
        jailbreak_roles=_roles(jb, "scan_roles", d.jailbreak_roles),
        injection_roles=_roles(inj, "roles", d.injection_roles),
        operator_roles=_roles(pi, "operator_roles", d.operator_roles),
        history_turns=sg.int("history_turns", d.history_turns, minimum=0),
        history_weight=sg.float("history_weight", d.history_weight, lo=0, hi=1),
        follow_up_words=sg.int("follow_up_words", d.follow_up_words, minimum=0),
        max_tokens_read=sg.int("max_tokens_read", d.max_tokens_read, minimum=128),
        # with the injection guard off, a paste set apart from the jailbreak guard would go unscanned
        split_pastes=jb.bool("split_pastes", d.split_pastes) and inj.bool("enabled", True),
    )


def _guard_section(gd: _Reader, name: str) -> _Reader:
    """guards.<name> as a mapping; the older form `guards.jailbreak: true|false` means {enabled: ...}."""
    value = gd.raw(name, {})
    if isinstance(value, bool):
        return _Reader({"enabled": value}, gd.source, gd.key(name))
    return gd.section(name)


def _roles(r: _Reader, name: str, default: frozenset[str]) -> frozenset[str]:
    roles = r.str_list(name, tuple(sorted(default)))
    bad = [x for x in roles if x not in ROLES]
    if bad:
        raise r.error(r.key(name), f"unknown role {bad[0]!r}; known: {', '.join(ROLES)}")
    return frozenset(roles)


def _guards(gd: _Reader, known_model) -> GuardsConfig:
    jb_threshold = gd.raw("jailbreak_threshold", None)
    if jb_threshold is not None:
        jb_threshold = gd.float("jailbreak_threshold", lo=0, hi=1)
    jb, inj = _guard_section(gd, "jailbreak"), _guard_section(gd, "injection")
    action = inj.str("action", "flag", choices=INJECTION_ACTIONS)
    model = inj.raw("model", None)
    if model is not None:
        model = known_model(inj, inj.key("model"), model)
    elif action == "route":
        raise inj.error(inj.key("model"), "is required when action is route (the model allowed to see it)")
    guards = GuardsConfig(
        jailbreak_enabled=jb.bool("enabled", True),
        jailbreak_threshold=jb_threshold,
        pii_enabled=gd.bool("pii", True),
        block_response=gd.str("block_response", "error", choices=("error", "completion")),
        injection_enabled=inj.bool("enabled", True),
        injection_action=action,
        injection_model=model,
    )
    jb.raw("scan_roles", None)   # read by _input_rule
    jb.raw("split_pastes", None)
    inj.raw("roles", None)
    for r in (jb, inj, gd):
        r.check_unknown()
    return guards


def _pii_names(r: _Reader, name: str, default: Any = ...) -> tuple[str, ...]:
    names = r.str_list(name, default)
    bad = taxonomy.unknown(names)
    if bad:
        raise r.error(r.key(name), f"unknown PII type or group {bad[0]!r}; groups: {', '.join(taxonomy.GROUPS)}; "
                                   f"types: {', '.join(taxonomy.ALL_TYPES)}")
    return names


def _pii_config(r: _Reader) -> PIIConfig:
    """`pii.actions` names groups or types; an entry for a type beats the entry for its group."""
    acts = r.section("actions")
    by_group: dict[str, str] = {}
    by_type: dict[str, str] = {}
    for name in acts.data:
        if taxonomy.unknown([name]) or name == "*":
            raise acts.error(acts.key(name), f"unknown PII type or group; groups: {', '.join(taxonomy.GROUPS)}; "
                                             f"types: {', '.join(taxonomy.ALL_TYPES)}")
        action = acts.str(name, choices=PII_ACTIONS)
        for t in taxonomy.expand([name]):
            (by_group if name in taxonomy.GROUPS else by_type)[t] = action
    cfg = PIIConfig(
        default_action=r.str("action", "route", choices=PII_ACTIONS),
        actions={**by_group, **by_type},
        ignore=taxonomy.expand(_pii_names(r, "ignore", [])),
        restore=r.bool("restore", True),
    )
    r.raw("operator_roles", None)   # read by _input_rule
    r.check_unknown()
    return cfg


def load_config(path: str | Path) -> RouterConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    return parse_config(data, source=path)


def parse_config(data: Any, *, source: Path) -> RouterConfig:
    """One parser per section; each reads only its own keys and rejects unknown ones."""
    root = _Reader(data, source, "")
    server = _server(root.section("server"))
    envoy = _envoy(root.section("envoy"), server)
    models = _models(root)
    names = [m.name for m in models]

    def known_model(r: _Reader, key: str, name: str) -> str:
        if name not in names:
            raise r.error(key, f"unknown model {name!r}; configured: {', '.join(names)}")
        return name

    default_model = known_model(root, "default_model", root.str("default_model", names[0]))
    auto_names = root.str_list("auto_model_names", ["auto", "MoM"])
    clash = set(auto_names) & set(names)
    if clash:
        raise root.error("auto_model_names", f"{sorted(clash)[0]!r} is also a configured model name")
    config = RouterConfig(
        source=Path(source),
        models=models,
        default_model=default_model,
        auto_model_names=auto_names,
        server=server,
        envoy=envoy,
        # in the order the sections were always read: with several mistakes, the same one is reported first
        signals=_signals(root.section("signals"), root.section("guards"), root.section("pii")),
        routing=_routing(root.section("routing"), known_model),
        guards=_guards(root.section("guards"), known_model),
        pii=_pii_config(root.section("pii")),
        logging=_logging(root.section("logging")),
        semantic_cache=_semantic_cache(root, source, envoy),
        decisions=_decisions(root, known_model),
        route_header=root.str("route_header", "x-selected-model").lower(),
        # live: the sections of live routing, usage and tracing, each parsed beside its module (read last, as before)
        live=config_live.live(root),
        usage=usage_section(root, names),
        tracing=tracing_section(root),
    )
    root.check_unknown()
    from .config_rules import check_signals  # the decisions' section lives beside this module

    check_signals(config.decisions, config)
    assert config.rules is not None   # built at load, not on the first request
    return config


def _server(s: _Reader) -> ServerConfig:
    ghost, gport = _hostport(s, "grpc_listen", "127.0.0.1:50051")
    mhost, mport = _hostport(s, "metrics_listen", "127.0.0.1:9190")
    server = ServerConfig(
        grpc_host=ghost,
        grpc_port=gport,
        metrics_host=mhost,
        metrics_port=mport,
        max_body_bytes=s.int("max_body_bytes", 8 * 1024 * 1024, minimum=1024),
        grace_period_s=s.float("grace_period_s", 10.0, lo=0),
        workers=s.int("workers", 1, minimum=1),
        max_concurrent_rpcs=s.int("max_concurrent_rpcs", 1024, minimum=1),
        admin_token_file=s.str("admin_token_file", None),
    )
    s.check_unknown()
    return server


def _envoy(e: _Reader, server: ServerConfig) -> EnvoyConfig:
    lhost, lport = _hostport(e, "listen", "127.0.0.1:8801")
    ahost, aport = _hostport(e, "admin", "127.0.0.1:9901")
    rhost, rport = _hostport(e, "router_address", server.grpc_address)
    envoy = EnvoyConfig(
        listen_host=lhost,
        listen_port=lport,
        admin_host=ahost,
        admin_port=aport,
        router_host=rhost,
        router_port=rport,
        message_timeout_ms=e.int("message_timeout_ms", 5000, minimum=50),
        failure_mode_allow=e.bool("failure_mode_allow", False),
        upstream_timeout_s=e.float("upstream_timeout_s", 300.0, lo=0.1),
        passthrough_paths=_passthrough_paths(e),
        max_downstream_connections=e.int("max_downstream_connections", 10_000, minimum=1),
        resilience=config_live.resilience(e),  # live:
    )
    e.check_unknown()
    return envoy


def _models(root: _Reader) -> tuple[ModelConfig, ...]:
    models: list[ModelConfig] = []
    for m in root.items("models"):
        name = m.str("name")
        replicas = config_live.endpoints(m, _hostport)  # live: `endpoint` or `endpoints` (replicas)
        host, port = replicas[0]
        pii_allow = _pii_names(m, "pii_allow", ["*"])
        models.append(
            ModelConfig(
                name=name,
                served_name=m.str("served_name", name),
                host=host,
                port=port,
                family=m.str("family", "none", choices=REASONING_FAMILIES),
                cost=m.float("cost", 1.0, lo=0),
                pii_allow=frozenset({"*"}) if "*" in pii_allow else taxonomy.expand(pii_allow),
                description=m.str("description", ""),
                endpoints=replicas if len(replicas) > 1 else (),  # live:
            )
        )
        m.check_unknown()
    if not models:
        raise root.error("models", "at least one model is required")
    names = [m.name for m in models]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise root.error("models", f"duplicate model name {dupes[0]!r}")
    return tuple(models)


def _signals(sg: _Reader, gd: _Reader, pi: _Reader) -> SignalsConfig:
    signals = SignalsConfig(
        model_dir=Path(sg.str("model_dir", "models/dist")),
        device=sg.str("device", "auto", choices=("auto", "cpu", "cuda")),
        max_batch_size=sg.int("max_batch_size", 16, minimum=1),
        max_wait_ms=sg.float("max_wait_ms", 0.0, lo=0),
        max_tokens=sg.int("max_tokens", 512, minimum=16),
        max_queue=sg.int("max_queue", 128, minimum=1),
        threads=sg.int("threads", 0, minimum=0),
        spin=sg.bool("spin", True),
        spin_after_run=sg.bool("spin_after_run", False),
        category=sg.bool("category", True),
        complexity=sg.bool("complexity", True),
        jailbreak=sg.bool("jailbreak", True),
        pii=sg.bool("pii", True),
        inputs=_input_rule(sg, gd, pi),
    )
    sg.check_unknown()
    return signals


def _routing(rt: _Reader, known_model: Callable[[_Reader, str, str], str]) -> RoutingConfig:
    cats = rt.section("categories")
    categories = tuple(_category(cats, cname, known_model) for cname in cats.data)
    cx = rt.section("complexity")
    simple = cx.raw("simple_model", None)
    complex_ = cx.raw("complex_model", None)
    complexity = ComplexityRule(
        enabled=cx.bool("enabled", True),
        threshold=cx.float("threshold", 0.5, lo=0, hi=1),
        simple_model=known_model(cx, cx.key("simple_model"), simple) if simple is not None else None,
        complex_model=known_model(cx, cx.key("complex_model"), complex_) if complex_ is not None else None,
    )
    cx.check_unknown()
    fallback = rt.str("fallback_category", "other", choices=CATEGORIES)
    routing = RoutingConfig(
        confidence_threshold=rt.float("confidence_threshold", 0.5, lo=0, hi=1),
        fallback_category=fallback,
        categories=categories,
        complexity=complexity,
    )
    rt.check_unknown()
    return routing


def _category(cats: _Reader, cname: str, known_model: Callable[[_Reader, str, str], str]) -> CategoryRoute:
    c = cats.section(cname)
    if cname not in CATEGORIES:
        raise c.error(c.path, f"unknown category; known: {', '.join(CATEGORIES)}")
    ms = c.section("model_scores")
    scores = []
    for mname in ms.data:
        known_model(ms, ms.key(mname), mname)
        scores.append((mname, ms.float(mname, lo=0)))
    if not scores:
        raise c.error(c.key("model_scores"), "at least one model score is required")
    effort = c.raw("reasoning_effort", None)
    if effort is not None and effort not in REASONING_EFFORTS:
        raise c.error(c.key("reasoning_effort"), f"must be one of {', '.join(REASONING_EFFORTS)}")
    route = CategoryRoute(
        name=cname,
        model_scores=tuple(sorted(scores, key=lambda s: -s[1])),
        use_reasoning=c.bool("use_reasoning", False),
        reasoning_effort=effort,
    )
    c.check_unknown()
    return route


def _logging(lg: _Reader) -> LoggingConfig:
    logging_cfg = LoggingConfig(
        level=lg.str("level", "info", choices=("debug", "info", "warning", "error")),
        log_prompts=lg.bool("log_prompts", False),
    )
    lg.check_unknown()
    return logging_cfg


def _decisions(root: _Reader, known_model: Callable[[_Reader, str, str], str]) -> Any:
    """`keywords:` and `decisions:` have their own parser (config_rules.py)."""
    from .config_rules import parse_rules

    return parse_rules(root, known_model)


def _semantic_cache(root: _Reader, source: Path, envoy: EnvoyConfig) -> Any:
    """The cache section has its own parser (config_cache.py). A relative `backend_config_path` is found beside
    this file, else in the working directory (config_cache._resolve)."""
    from .config_cache import check_timeouts, load_semantic_cache  # the cache's section lives beside this module

    semantic_cache = load_semantic_cache(root.raw("semantic_cache", None), source=Path(source))
    check_timeouts(semantic_cache, envoy.message_timeout_ms / 1000, file=source)
    return semantic_cache
