"""The request path as named stages: parse → signals → decide → cache → act → tap → store (docs/architecture.md).

Each module owns one stage; `router_extproc.pipeline.Router` only calls them in order. No stage imports
protobuf or the server: what a stage returns is a plain value (`exchange.Respond`, `exchange.Continue`, ...).
"""
