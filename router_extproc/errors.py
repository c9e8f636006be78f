"""Exceptions shared across modules."""


class ConfigError(ValueError):
    """A configuration file is invalid. The message names the file, the key and the reason."""


class Overloaded(RuntimeError):
    """Work was refused because a bounded queue is full; the request is answered 503, not made to wait."""
