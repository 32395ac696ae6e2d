"""Schemathesis over every public operation of the gateway — the chat, the notifications, the
agencies' API and Open311 — against its own OpenAPI document, on SQLite and on PostgreSQL, with
valid credentials: no server error, status codes and content types documented, responses valid
against the documented schemas (issue 14: "no 5xx on any input").

The gateway is served by uvicorn (real HTTP) with Rasa down (the guided mode answers)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
import uvicorn
from agency_support import AGENCY_X, reset_database
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from security_support import settings_for

from webhook.agency import auth, open311
from webhook.app import create_app
from webhook.store import tickets
from webhook.store.db import create_engine, session_factory

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
PUBLIC = r"^/(api/v1/(chat|notifications|tracking|agency/tickets)|open311/)"
OPERATIONS = {
    "POST /api/v1/chat",
    "POST /api/v1/notifications",
    "POST /api/v1/tracking",
    "GET /api/v1/agency/tickets",
    "GET /api/v1/agency/tickets/{reference}",
    "POST /api/v1/agency/tickets/{reference}/acknowledge",
    "POST /api/v1/agency/tickets/{reference}/status",
    "POST /api/v1/agency/tickets/{reference}/answer",
    "GET /open311/v2/services.json",
    "GET /open311/v2/services/{service_code}.json",
    "GET /open311/v2/requests.json",
    "POST /open311/v2/requests.json",
    "GET /open311/v2/requests/{service_request_id}.json",
}
EXAMPLES = 40


async def _seed(url: str) -> tuple[str, list[str], list[str]]:
    await reset_database(url)
    engine = create_engine(url)
    try:
        sessions = session_factory(engine)
        references, codes = [], []
        for n, commune in enumerate(("39198", "39198", "04070")):
            ticket, _ = await tickets.file_report(
                sessions,
                tickets.NewReport(
                    report_type="incivilite",
                    commune_insee=commune,
                    fields={"description": f"bruit {n}"},
                    conversation_id=f"web-seed{n}",
                ),
            )
            references.append(ticket.reference)
            codes.append(tickets.ticket_summary(ticket, with_tracking_code=True)["tracking_code"])
        _, clear = await auth.create_api_token(sessions, AGENCY_X, "schemathesis")
        return clear, references, codes
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def server(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, str, list[str], list[str]]]:
    monkeypatch.setenv("TRANQUILLITE_OUTBOX_WORKER", "off")
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'schemathesis.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    key, references, codes = asyncio.run(_seed(url))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    app = create_app(settings_for(url, tmp_path))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", key, references, codes
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _run(
    operation: schemathesis.APIOperation,
    base_url: str,
    key: str,
    references: list[str],
    codes: list[str],
    seen: dict[str, set[int]],
) -> None:
    statuses = seen.setdefault(operation.label, set())
    counter = iter(range(1_000_000))

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def run(case: schemathesis.Case) -> None:
        n = next(counter)
        headers = dict(case.headers or {})
        if operation.path.startswith("/api/v1/agency/"):
            headers["Authorization"] = f"Bearer {key}"
            if case.path_parameters and "reference" in case.path_parameters and n % 2 == 0:
                case.path_parameters["reference"] = references[n % 2]  # a ticket of the agency
        if operation.path.startswith("/open311/"):
            # the key as a parameter (GeoReport clients) or in the header (new clients)
            if case.query is not None and "api_key" in case.query:
                case.query["api_key"] = key
            if isinstance(case.body, dict) and "api_key" in case.body:
                case.body["api_key"] = key
            headers = {k: v for k, v in headers.items() if k.lower() != "x-api-key"}
            if n % 3 != 0:
                headers["X-Api-Key"] = key
        if operation.path == "/open311/v2/requests.json" and isinstance(case.body, dict):
            allowed = open311.SERVICE_ATTRIBUTES.get(str(case.body.get("service_code")))
            if allowed is not None and n % 2 == 0:
                codes_of = {f"attribute[{a.code}]" for a in allowed}
                for name in [k for k in case.body if k.startswith("attribute[")]:
                    if name not in codes_of:
                        del case.body[name]
                case.body["attribute[commune]"] = "39198"
                for attribute in allowed:
                    if attribute.values:
                        case.body[f"attribute[{attribute.code}]"] = attribute.values[0][0]
        if operation.path == "/api/v1/notifications" and isinstance(case.body, dict):
            if n % 2 == 0:
                case.body["tracking_codes"] = [codes[0]]
        case.headers = headers
        response = case.call_and_validate(base_url=base_url, checks=CHECKS)
        statuses.add(response.status_code)

    run()


def test_every_public_operation_conforms_and_never_fails(
    server: tuple[str, str, list[str], list[str]],
) -> None:
    base_url, key, references, codes = server
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json").include(path_regex=PUBLIC)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} == OPERATIONS
    seen: dict[str, set[int]] = {}
    for operation in operations:
        _run(operation, base_url, key, references, codes, seen)
    # the valid credentials were used: the operations answered with data, not only errors
    assert 200 in seen["POST /api/v1/chat"]
    assert 200 in seen["GET /api/v1/agency/tickets"]
    assert 200 in seen["GET /open311/v2/requests.json"]
    assert 201 in seen["POST /open311/v2/requests.json"]
    assert 200 in seen["POST /api/v1/notifications"]
