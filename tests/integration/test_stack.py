"""The dev stack itself (router_extproc/dev/stack.py): tests and `make run` depend on it starting reliably."""

from __future__ import annotations

import socket

from router_extproc.dev.stack import _ephemeral_range, free_port

from .conftest import BACKBONE, chat, client


def test_a_free_port_is_bindable_and_outside_the_kernels_ephemeral_range():
    # Outgoing connections take ephemeral ports; a listener port chosen there could be taken before it binds.
    low, high = _ephemeral_range()
    for _ in range(20):
        port = free_port()
        assert not low <= port <= high
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_a_router_port_taken_before_the_router_binds_it_is_replaced_and_the_stack_still_starts(make_stack, monkeypatch):
    from router_extproc.dev import stack as stack_module

    blockers: list[socket.socket] = []
    real_start_router = stack_module.Stack.start_router

    def start_router_with_its_metrics_port_taken(self, *args, **kwargs):
        if not blockers:   # the race, made certain: something binds the port between choice and use
            s = socket.socket()
            s.bind((self.config.server.metrics_host, self.config.server.metrics_port))
            s.listen()
            blockers.append(s)
        return real_start_router(self, *args, **kwargs)

    monkeypatch.setattr(stack_module.Stack, "start_router", start_router_with_its_metrics_port_taken)
    try:
        stack = make_stack(BACKBONE)
        assert stack.config.server.metrics_port != blockers[0].getsockname()[1]
        with client(stack) as c:
            assert c.post("/v1/chat/completions", json=chat("small")).status_code == 200
    finally:
        for s in blockers:
            s.close()
