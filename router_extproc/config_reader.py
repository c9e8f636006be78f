"""The one validation idiom of every config section: typed access to a YAML mapping.

Each section's parser (config.py, config_cache.py, config_live.py, config_rules.py, usage.py, tracing.py) reads
its keys through a :class:`Reader`, so every failure is a :class:`~router_extproc.errors.ConfigError` whose
message is ``"{file}: {dotted.key}: {reason}"``, and every section rejects the keys it did not read.

A missing key and an explicit ``null`` both mean the default. This module imports nothing else of the package
(but its exception), so any section's parser can use it without an import cycle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["Reader", "config_error"]


def config_error(source: Path | str, key: str, reason: str) -> ConfigError:
    """The one shape of a config error: file, dotted key, reason (also for checks made outside a Reader)."""
    return ConfigError(f"{source}: {key or '<root>'}: {reason}")


class Reader:
    """Typed access to one mapping of a YAML file; every failure names file and key."""

    def __init__(self, data: Any, source: Path | str, path: str) -> None:
        self.source = str(source)
        self.path = path
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise self.error(path, f"must be a mapping, got {type(data).__name__}")
        self.data = data
        self._seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, key: str, reason: str) -> ConfigError:
        return config_error(self.source, key, reason)

    def raw(self, name: str, default: Any = ...) -> Any:
        self._seen.add(name)
        if name not in self.data or self.data[name] is None:
            if default is ...:
                raise self.error(self.key(name), "is required")
            return default
        return self.data[name]

    def ignore(self, *names: str) -> None:
        """Accept these keys without reading them: knobs of another implementation that a seed file carries, or
        keys that only some settings read (check_unknown must not call them unknown)."""
        self._seen.update(names)

    def _typed(self, name: str, types: tuple[type, ...], label: str, default: Any) -> Any:
        value = self.raw(name, default)
        if value is default and default is not ...:
            return value
        if isinstance(value, bool) and bool not in types:
            raise self.error(self.key(name), f"must be {label}, got {value!r}")
        if not isinstance(value, types):
            raise self.error(self.key(name), f"must be {label}, got {value!r}")
        return value

    def str(self, name: str, default: Any = ..., choices: Sequence[str] | None = None) -> str:
        value = self._typed(name, (str,), "a string", default)
        if choices is not None and value not in choices:
            raise self.error(self.key(name), f"must be one of {', '.join(choices)}; got {value!r}")
        return value

    def text(self, name: str, default: Any = "") -> str:
        """A scalar read as text: a string, or a number YAML parsed as one (a numeric password, database or host
        name). True/false, lists and mappings are refused."""
        value = self._typed(name, (str, int, float), "a string", default)
        return value if value is default else str(value)

    def bool(self, name: str, default: Any = ...) -> bool:
        return self._typed(name, (bool,), "true or false", default)

    def int(self, name: str, default: Any = ..., minimum: int | None = None, maximum: int | None = None) -> int:
        value = self._typed(name, (int,), "an integer", default)
        if value is None:  # an optional setting left unset (default None)
            return value
        if minimum is not None and value < minimum:
            raise self.error(self.key(name), f"must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.error(self.key(name), f"must be <= {maximum}, got {value}")
        return value

    def float(self, name: str, default: Any = ..., lo: float | None = None, hi: float | None = None) -> float:
        value = self._typed(name, (int, float), "a number", default)
        if value is None:  # an optional setting left unset (default None)
            return value
        value = float(value)
        if not math.isfinite(value):  # NaN passes every comparison: `.nan` would switch a guard off
            raise self.error(self.key(name), f"must be a finite number, got {value}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bound = f">= {lo}" if hi is None else f"<= {hi}" if lo is None else f"within [{lo}, {hi}]"
            raise self.error(self.key(name), f"must be {bound}, got {value}")
        return value

    def str_list(self, name: str, default: Any = ...) -> tuple[str, ...]:
        value = self.raw(name, default)
        if value is default and default is not ...:
            return tuple(value)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(self.key(name), f"must be a list of strings, got {value!r}")
        return tuple(value)

    def mapping(self, name: str, default: Any = ...) -> dict[Any, Any]:
        """A mapping handed on as it is (e.g. a Milvus index's parameters), not read key by key."""
        value = self.raw(name, default)
        if value is default and default is not ...:
            return value
        if not isinstance(value, Mapping):
            raise self.error(self.key(name), f"must be a mapping, got {type(value).__name__}")
        return dict(value)

    def section(self, name: str) -> Reader:
        return Reader(self.raw(name, {}), self.source, self.key(name))

    def items(self, name: str) -> list[Reader]:
        value = self.raw(name, [])
        if not isinstance(value, list):
            raise self.error(self.key(name), "must be a list")
        return [Reader(v, self.source, f"{self.key(name)}[{i}]") for i, v in enumerate(value)]

    def check_unknown(self) -> None:
        """Call after reading every key (or `ignore`-ing it): any other key is a typo."""
        unknown = sorted(set(self.data) - self._seen, key=str)
        if unknown:
            known = sorted(self._seen, key=str)
            raise self.error(self.key(unknown[0]), f"unknown key (typo?); known: {', '.join(map(str, known))}")
