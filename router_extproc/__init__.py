"""router-extproc: a semantic router and semantic cache for LLM traffic, as an Envoy ext_proc server."""

__version__ = "0.1.0"
