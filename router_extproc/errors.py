"""Exceptions shared across modules."""


class ConfigError(ValueError):
    """A configuration file is invalid. The message names the file, the key and the reason."""
