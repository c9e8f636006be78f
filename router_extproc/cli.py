"""`router-extproc` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from .errors import ConfigError

DEFAULT_CONFIG = "config/config.yaml"


def _serve(args: argparse.Namespace) -> int:
    from .app import serve

    workers = args.workers
    if workers is None:  # default: server.workers, the same number Envoy's router cluster was rendered with
        from .config import load_config

        workers = load_config(args.config).server.workers
    if workers > 1:
        from .workers import run_workers

        if args.host is not None:
            print("error: --host applies to one process; with several workers set server.grpc_listen",
                  file=sys.stderr)
            return 2
        return run_workers(args.config, workers)
    try:
        asyncio.run(serve(args.config, grpc_port=args.port, metrics_port=args.metrics_port, grpc_host=args.host))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _envoy_config(args: argparse.Namespace) -> int:
    from .config import load_config
    from .envoy_config import render_yaml

    text = render_yaml(load_config(args.config))
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def _validate(args: argparse.Namespace) -> int:
    from .config import load_config

    cfg = load_config(args.file)
    print(f"{args.file}: ok ({len(cfg.models)} models, default {cfg.default_model})")
    return 0


def _explain(args: argparse.Namespace) -> int:
    from .explain import run_explain

    return run_explain(args.config, args.prompt, sys.stdout)


def _demo(args: argparse.Namespace) -> int:
    from .dev.demo_upstream import serve

    serve(args.host, args.port, args.model, args.latency_ms, verbose=args.verbose)
    return 0


def _classify(args: argparse.Namespace) -> int:
    from .signals.classify import run_classify

    src = open(args.input) if args.input and args.input != "-" else sys.stdin
    with src:
        return run_classify(args.model_dir, src, sys.stdout, device=args.device)


def _cache(args: argparse.Namespace) -> int:
    from .cache.admin import run_admin
    from .config import load_config

    cfg = load_config(args.config)
    try:
        result = run_admin(cfg, args.action, scope=args.scope, headers=args.header)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, default=str))
    failed = [r for r in result.get("routers", {}).values() if "error" in r]
    return 1 if failed else 0


def _stack(args: argparse.Namespace) -> int:
    from .dev.stack import run_stack_foreground

    return run_stack_foreground(args.config, demo_latency_ms=args.demo_latency_ms)


def _status(args: argparse.Namespace) -> int:
    """live: each worker's /live on the ops port (worker i on metrics port + i), one table per worker."""
    import urllib.request

    from .config import load_config

    cfg = load_config(args.config)
    s = cfg.server
    docs = []
    for i in range(s.workers):
        url = f"http://{s.metrics_host}:{s.metrics_port + i}/live"
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                docs.append({"worker": i, **json.loads(r.read())})
        except OSError as exc:
            docs.append({"worker": i, "error": f"{url}: {exc}"})
    if args.json:
        print(json.dumps(docs, indent=1))
        return 0 if all("error" not in d for d in docs) else 1
    cols = ("state", "answers", "error_rate", "ttfb_p50_s", "ttfb_p95_s", "tokens_per_s", "in_flight",
            "replicas_healthy", "cooling_left_s", "last_cause")
    for d in docs:
        print(f"worker {d['worker']}" + (f": {d['error']}" if "error" in d else f" (selection {d['selection']})"))
        if "error" in d:
            continue
        print("  " + "  ".join([f"{'model':<20}", *(f"{c:>12}" for c in cols[:-1]), cols[-1]]))
        for name, m in d["models"].items():
            healthy = m["replicas_healthy"]
            vals = [m[c] if c != "replicas_healthy" else
                    ("?" if healthy is None else f"{healthy}/{m['replicas_total']}") for c in cols]
            print("  " + "  ".join([f"{name:<20}", *(f"{'-' if v is None else v!s:>12}" for v in vals[:-1]),
                                    str(vals[-1])]))
    return 0 if all("error" not in d for d in docs) else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="router-extproc", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the ext_proc gRPC server")
    s.add_argument("--config", default=DEFAULT_CONFIG)
    s.add_argument("--port", type=int, default=None, help="override server.grpc_listen's port")
    s.add_argument("--metrics-port", type=int, default=None)
    s.add_argument("--host", default=None,
                   help="override server.grpc_listen's host (e.g. 0.0.0.0 where a gateway calls a Service)")
    s.add_argument("--workers", type=int, default=None,
                   help="processes (default: server.workers); worker i listens on port+i, metrics port+i")
    s.set_defaults(func=_serve)

    e = sub.add_parser("envoy-config", help="render the Envoy bootstrap from the router config")
    e.add_argument("--config", default=DEFAULT_CONFIG)
    e.add_argument("-o", "--output")
    e.set_defaults(func=_envoy_config)

    v = sub.add_parser("validate-config", help="check a config file; exit 2 naming file, key and reason")
    v.add_argument("file")
    v.set_defaults(func=_validate)

    x = sub.add_parser("explain", help="print the signals, every rule's outcome and the decision for one request")
    x.add_argument("prompt", help="a chat request JSON file (model defaults to auto), {\"prompt\": ...} or plain text")
    x.add_argument("--config", default=DEFAULT_CONFIG)
    x.set_defaults(func=_explain)

    d = sub.add_parser("demo-upstream", help="a DEMO OpenAI-compatible upstream (no real model)")
    d.add_argument("--host", default="127.0.0.1")
    d.add_argument("--port", type=int, required=True)
    d.add_argument("--model", required=True)
    d.add_argument("--latency-ms", type=float, default=0.0)
    d.add_argument("--verbose", action="store_true")
    d.set_defaults(func=_demo)

    c = sub.add_parser("classify", help="print the signals for prompts (one a line, or JSONL with `text`)")
    c.add_argument("input", nargs="?", default="-")
    c.add_argument("--model-dir", default="models/dist")
    c.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    c.set_defaults(func=_classify)

    k = sub.add_parser("cache", help="inspect or clear the semantic cache")
    k.add_argument("action", choices=("stats", "clear"))
    k.add_argument("--config", default=DEFAULT_CONFIG)
    k.add_argument("--scope", default=None,
                   help="clear only this tenant: a scope id, or the raw value of the first scope header")
    k.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                   help="clear only the tenant sending these scope headers (repeat for several)")
    k.set_defaults(func=_cache)

    st = sub.add_parser("status", help="live routing state per model, from each worker's /live (ops port)")
    st.add_argument("--config", default=DEFAULT_CONFIG)
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=_status)

    r = sub.add_parser("stack", help="run Envoy + router + demo upstreams in the foreground (make run)")
    r.add_argument("--config", default=DEFAULT_CONFIG)
    r.add_argument("--demo-latency-ms", type=float, default=300.0)
    r.set_defaults(func=_stack)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
