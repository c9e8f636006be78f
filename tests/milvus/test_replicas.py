"""Two router replicas (two processes, each with its own exact and hot tiers) sharing one Milvus server.

What a user of a multi-replica deployment notices: an answer cached through one replica is served by the other;
a clear made through one reaches the other within 2 s, even for an entry the other holds in its in-process
tiers; tenants stay isolated; and spreading traffic over two replicas hits as often as sending it to one.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.milvus_server

ROOT = Path(__file__).resolve().parents[2]
INVALIDATION_BOUND_S = 2.0


class Replica:
    def __init__(self, uri: str, collection: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.milvus.replica_proc", uri, collection],
                                     cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        assert json.loads(self.proc.stdout.readline())["ready"]

    def __call__(self, op: str, **kw) -> dict:
        self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def replicas(milvus_server, request):
    uri = f"http://127.0.0.1:{milvus_server.listen_port}"
    rs = [Replica(uri, f"rep_{request.node.name[5:30]}") for _ in range(2)]
    yield rs
    for r in rs:
        r.close()


def until(fn, timeout_s: float, step_s: float = 0.05):
    """Poll ``fn`` until it is truthy; (value, seconds it took)."""
    t0 = time.monotonic()
    while True:
        v = fn()
        if v or time.monotonic() - t0 > timeout_s:
            return v, time.monotonic() - t0
        time.sleep(step_s)


def test_an_answer_cached_through_one_replica_is_served_by_the_other(replicas):
    r1, r2 = replicas
    r1("store", q="What is the capital of France?", tenant="a", seed=1, answer="Paris.")
    hit, _ = until(lambda: r2("lookup", q="capital of France?", tenant="a", seed=1, noise=0.05)["hit"], 5.0)
    assert hit == "Paris."
    assert r2("lookup", q="capital of France?", tenant="b", seed=1, noise=0.05)["hit"] is None  # other tenant


def test_a_clear_through_one_replica_reaches_the_other_within_two_seconds(replicas):
    r1, r2 = replicas
    r1("store", q="What is the capital of France?", tenant="a", seed=1, answer="Paris.")
    r1("store", q="What is the capital of Spain?", tenant="b", seed=2, answer="Madrid.")
    # r2 serves both, so it holds them in its own exact and hot tiers
    assert until(lambda: r2("lookup", q="What is the capital of France?", tenant="a", seed=1)["hit"], 5.0)[0]
    assert until(lambda: r2("lookup", q="What is the capital of Spain?", tenant="b", seed=2)["hit"], 5.0)[0]
    scope_a = r2("exact", q="What is the capital of France?", tenant="a")["scope"]

    r1("clear", scope=scope_a)
    gone, took = until(lambda: r2("exact", q="What is the capital of France?", tenant="a")["hit"] is None,
                       INVALIDATION_BOUND_S + 1)
    print(f"tenant clear visible on the other replica after {took:.2f} s")
    assert gone and took <= INVALIDATION_BOUND_S
    assert r2("lookup", q="What is the capital of France?", tenant="a", seed=1)["hit"] is None  # not from Milvus
    assert r2("exact", q="What is the capital of Spain?", tenant="b")["hit"] == "Madrid."  # other tenant kept

    r2("clear")  # everything, from the other side
    gone, took = until(lambda: r1("exact", q="What is the capital of Spain?", tenant="b")["hit"] is None,
                       INVALIDATION_BOUND_S + 1)
    print(f"full clear visible on the other replica after {took:.2f} s")
    assert gone and took <= INVALIDATION_BOUND_S


def test_two_replicas_hit_as_often_as_one_on_the_same_traffic(milvus_server, replicas):
    # 20 questions, each asked 3 times (paraphrased: a small embedding noise), round-robin over the replicas
    traffic = [(f"question number {i % 20}", i % 20 + 10) for i in range(60)]

    def run(targets) -> int:
        hits = 0
        for n, (q, seed) in enumerate(traffic):
            r = targets[n % len(targets)]
            got = r("lookup", q=f"{q} (take {n // 20})", tenant="t", seed=seed, noise=0.05)["hit"]
            if got is None:
                r("store", q=f"{q} (take {n // 20})", tenant="t", seed=seed, answer=q)
                time.sleep(1.0)  # a real miss takes an upstream round trip before the next request arrives
            else:
                hits += 1
        return hits

    single = run([replicas[0]])
    replicas[0]("clear")
    time.sleep(INVALIDATION_BOUND_S)
    pair = run(replicas)
    print(f"hits on the same traffic: one replica {single}, two replicas {pair}")
    assert single == 40 and pair == single
