"""The seams of docs/architecture.md, enforced: which module may import what, and how long a function may grow."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "router_extproc"
MAX_FUNCTION_LINES = 80
# Functions over the limit that another branch is changing at the same time; split them once it has merged.
TOO_LONG_FOR_NOW: set[tuple[str, str]] = set()


def modules() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if "_proto" not in p.relative_to(PKG).parts)


def name_of(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """Absolute names of every module `path` imports (at any depth of the file, lazy imports included)."""
    package = name_of(path) if path.name == "__init__.py" else name_of(path).rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[:len(base) - node.level + 1] if node.level else []
            mod = ".".join([*base, *([node.module] if node.module else [])])
            out.add(mod)
            if node.module is None:   # `from . import reply` imports the module reply
                out.update(f"{mod}.{a.name}" for a in node.names)
    return out


def imports_any(path: Path, prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in imports(path) if any(m == p or m.startswith(p + ".") for p in prefixes))


PROTOBUF = ("router_extproc._proto", "google.protobuf", "grpc", "grpc_health")


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_protobuf_and_grpc_stay_in_the_server(path):
    if path.relative_to(PKG).as_posix() in ("server.py", "app.py"):   # app.py only starts and stops the server
        return
    assert imports_any(path, PROTOBUF) == []


@pytest.mark.parametrize("path", sorted((PKG / "stages").glob("*.py")), ids=lambda p: p.name)
def test_stages_never_import_the_server_the_app_or_the_orchestrator(path):
    assert imports_any(path, ("router_extproc.server", "router_extproc.app", "router_extproc.pipeline",
                              "router_extproc.dev", *PROTOBUF)) == []


def test_decide_is_pure_it_imports_no_io():
    # the rules read the config, the parsed request, the signals' contract and the resolved thresholds: nothing
    # that touches a file, a socket, a model or the cache
    pure = {"__future__", "copy", "collections.abc", "dataclasses", "typing", "router_extproc.config",
            "router_extproc.openai", "router_extproc.stages.contracts", "router_extproc.thresholds",
            "router_extproc.signals.spec", "router_extproc.rules", "re", "re2"}   # rules.py: the operator's decisions
    for path in (PKG / "decision.py", PKG / "thresholds.py", PKG / "signals" / "spec.py", PKG / "rules.py"):
        assert imports(path) <= pure, (path.name, sorted(imports(path) - pure))


def test_the_config_reader_imports_nothing_of_the_package_but_its_exception():
    # every section's parser imports it: an import of its own would make a cycle sooner or later
    ours = {m for m in imports(PKG / "config_reader.py") if m.startswith("router_extproc")}
    assert ours == {"router_extproc.errors"}


def test_the_runtime_never_imports_the_dev_tools():
    for path in modules():
        rel = path.relative_to(PKG).as_posix()
        if rel.startswith("dev/") or rel == "cli.py":   # the CLI's dev commands start them
            continue
        assert imports_any(path, ("router_extproc.dev",)) == [], rel


def test_no_function_is_longer_than_80_lines():
    long = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES and (path.name, node.name) not in TOO_LONG_FOR_NOW:
                    long.append(f"{path.relative_to(PKG)}:{node.name} ({n} lines)")
    assert long == []


LOWER_LAYERS = {
    # module or package: what it must not import (docs/architecture.md)
    "openai.py": ("router_extproc.stages", "router_extproc.cache"),
    "config.py": ("router_extproc.stages", "router_extproc.cache", "router_extproc.signals.engine"),
    "config_cache.py": ("router_extproc.stages", "router_extproc.cache", "router_extproc.signals.engine"),
    "config_live.py": ("router_extproc.stages", "router_extproc.cache", "router_extproc.signals.engine"),
    "config_rules.py": ("router_extproc.stages", "router_extproc.cache", "router_extproc.signals.engine"),
    "cache": ("router_extproc.stages", "router_extproc.server", "router_extproc.pipeline"),
    "signals": ("router_extproc.stages", "router_extproc.cache", "router_extproc.server"),
    "pii": ("router_extproc.stages", "router_extproc.cache", "router_extproc.server"),
    # live routing, usage and tracing: the stages call them, never the other way round
    "live.py": ("router_extproc.stages", "router_extproc.server", "router_extproc.pipeline"),
    "usage.py": ("router_extproc.stages", "router_extproc.server", "router_extproc.pipeline"),
    "tracing.py": ("router_extproc.stages", "router_extproc.server", "router_extproc.pipeline"),
}


@pytest.mark.parametrize("where", sorted(LOWER_LAYERS))
def test_lower_layers_never_import_the_layers_above(where):
    paths = sorted((PKG / where).glob("*.py")) if (PKG / where).is_dir() else [PKG / where]
    assert {p.name: imports_any(p, LOWER_LAYERS[where]) for p in paths} == {p.name: [] for p in paths}
