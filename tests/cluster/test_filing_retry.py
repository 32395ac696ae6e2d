"""The action server's filing (actions/report_actions.py ``_post_report``), in the real Rasa
environment over real HTTP, when the request is cut on its way: a load balancer whose gateway was
killed mid-request answers 502 (HAProxy's page), or the connection drops. The filing is
idempotent (same body, same key), so it is sent again before the citizen is told it failed;
what the gateway refuses (4xx) is not retried.

The far end is a local HTTP server playing the load balancer: it answers the scripted failures,
then a ticket (the failover test, tests/cluster/test_failover.py, does this with the real
HAProxy and gateways, but cannot choose when a request is cut)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.rasa_python import run_in_rasa_env

TICKET = {"reference": "04-2026-000042", "agency": {"name": "x"}}
BODY = {"report_type": "incivilite", "idempotency_key": "web-x:1", "fields": {}}

CHECK = r"""
import asyncio, json, sys
from actions.report_actions import _post_report
print(json.dumps(asyncio.run(_post_report(json.loads(sys.argv[1])))))
"""


class LoadBalancer(ThreadingHTTPServer):
    def __init__(self, script: list[str]) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.script = script  # what each request gets: "502", "503", "400", "drop", "ok"
        self.bodies: list[dict] = []


class Handler(BaseHTTPRequestHandler):
    server: LoadBalancer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.bodies.append(json.loads(self.rfile.read(length)))
        step = self.server.script.pop(0) if self.server.script else "ok"
        if step == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        status = 201 if step == "ok" else int(step)
        payload = json.dumps(TICKET if step == "ok" else {"detail": "x"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def balancer(request: pytest.FixtureRequest) -> Iterator[LoadBalancer]:
    server = LoadBalancer(list(request.param))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def post_report(server: LoadBalancer) -> dict | None:
    env = {
        "TRANQUILLITE_GATEWAY_URL": f"http://127.0.0.1:{server.server_address[1]}",
        "TRANQUILLITE_INTERNAL_TOKEN": "t",
    }
    result = run_in_rasa_env(CHECK, json.dumps(BODY), extra_env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    answer: dict | None = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


@pytest.mark.parametrize(
    ("balancer", "sent"),
    [(["502"], 2), (["drop", "503"], 3), (["504", "502"], 3)],
    indirect=["balancer"],
)
def test_a_cut_filing_is_sent_again_and_files(balancer: LoadBalancer, sent: int) -> None:
    assert post_report(balancer) == TICKET
    assert len(balancer.bodies) == sent
    assert all(body == BODY for body in balancer.bodies)  # the same filing, the same key


@pytest.mark.parametrize(
    ("balancer", "sent"), [(["502", "502", "502"], 3), (["400"], 1)], indirect=["balancer"]
)
def test_a_filing_that_keeps_failing_or_is_refused_fails(balancer: LoadBalancer, sent: int) -> None:
    assert post_report(balancer) is None
    assert len(balancer.bodies) == sent
