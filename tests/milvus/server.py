"""Starting a real Milvus 2.3 standalone server (`milvus-server` from the `milvus` wheel) for tests."""

import time
import urllib.request



def _start(server, timeout_s=120.0):
    """Start and wait for /healthz; fail fast if the process dies (then the caller may retry once)."""
    server.start()
    deadline = time.monotonic() + timeout_s
    url = f"http://127.0.0.1:{server.webservice_port}/healthz"
    while time.monotonic() < deadline:
        if server.server_proc is None or server.server_proc.poll() is not None:
            raise RuntimeError("milvus process exited during start-up (see its logs under the data dir)")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if b"OK" in r.read():
                    time.sleep(1)
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"milvus-server not healthy after {timeout_s:.0f}s")


def restart(server):
    server.stop()
    for attempt in range(2):
        try:
            _start(server)
            return
        except RuntimeError:
            server.stop()
            if attempt:
                raise
