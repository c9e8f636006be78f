"""router-extproc: a semantic router and semantic cache for LLM traffic, as an Envoy ext_proc server."""

import os as _os

# numpy's OpenBLAS starts a thread per core for any product it finds large enough, such as the cache verifier's
# MLP layers and the hot index's matrix-vector search. In the router those threads spin against onnxruntime's
# pool, which already has every core: on 2 cores a 1 ms product took 15-25 ms. The router's parallelism is
# onnxruntime's and the event loop's; numpy runs single-threaded unless the environment says otherwise. This
# only takes effect where router_extproc is imported before numpy (the CLI and the server are).
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
