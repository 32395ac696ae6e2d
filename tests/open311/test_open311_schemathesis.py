"""Property-based check of the Open311 endpoints with schemathesis, against the gateway's own
OpenAPI document, served by uvicorn (real app, real SQLite file) with a valid api_key.

Checks: no server error, status codes and content types documented, responses valid against
the documented schemas."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from webhook.agency import auth, open311
from webhook.app import create_app
from webhook.config import Settings
from webhook.store import tickets
from webhook.store.db import create_engine, migrate, session_factory

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _seed(url: str) -> str:
    engine = create_engine(url)
    try:
        await migrate(engine)
        sessions = session_factory(engine)
        for n, commune in enumerate(("39198", "39198", "04070")):
            await tickets.file_report(
                sessions,
                tickets.NewReport(
                    report_type="incivilite",
                    commune_insee=commune,
                    fields={"description": f"bruit {n}"},
                ),
            )
        _, clear = await auth.create_api_token(sessions, "39-pm-dole", "schemathesis")
        return clear
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def open311_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, str]]:
    var_dir = tmp_path_factory.mktemp("open311")
    url = f"sqlite+aiosqlite:///{var_dir / 'open311.db'}"
    key = asyncio.run(_seed(url))
    port = _free_port()
    app = create_app(
        Settings(
            var_dir=var_dir,
            database_url=url,
            rasa_url="http://127.0.0.1:9",
            secret_key="clé de test suffisamment longue pour signer les sessions",
        )
    )
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
        yield f"http://127.0.0.1:{port}", key
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def open311_schema(open311_server: tuple[str, str]) -> schemathesis.BaseSchema:
    base_url, _ = open311_server
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    return schema.include(path_regex="^/open311/")


def check_operation(
    operation: schemathesis.APIOperation, base_url: str, key: str, statuses: dict[str, set[int]]
) -> None:
    """Run schemathesis' generated cases of one operation with the valid api_key. Every other
    POST case gets a valid commune and only its service's attributes, so that filings succeed
    too (the others exercise the validation)."""
    seen = statuses.setdefault(operation.label, set())
    counter = iter(range(1_000_000))

    @given(case=operation.as_strategy())
    @settings(
        max_examples=60,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def run(case: schemathesis.Case) -> None:
        if case.query is not None and "api_key" in case.query:
            case.query["api_key"] = key
        if isinstance(case.body, dict):
            if "api_key" in case.body:
                case.body["api_key"] = key
            allowed = open311.SERVICE_ATTRIBUTES.get(str(case.body.get("service_code")))
            if allowed is not None and next(counter) % 2 == 0:
                case.body["api_key"] = key
                codes = {f"attribute[{a.code}]" for a in allowed}
                for name in [n for n in case.body if n.startswith("attribute[")]:
                    if name not in codes:
                        del case.body[name]
                case.body["attribute[commune]"] = "39198"
                # the valid key in the body is the one used (a generated header would win)
                for header in [
                    h for h in case.headers or {} if h.lower() in ("x-api-key", "authorization")
                ]:
                    del case.headers[header]  # type: ignore[union-attr]
                for coordinate in ("lat", "long"):  # a generated null is no number
                    case.body.pop(coordinate, None)
                for attribute in allowed:
                    name = f"attribute[{attribute.code}]"
                    if attribute.values:
                        case.body[name] = attribute.values[0][0]
                    elif attribute.code != "commune" and attribute.datatype != "datetime":
                        # free text: a random string may read as no answer ("?", "0")
                        case.body[name] = "Devant la mairie, le soir"
        response = case.call_and_validate(base_url=base_url, checks=CHECKS)
        seen.add(response.status_code)

    run()


def test_open311_conforms_to_its_openapi_document(
    open311_server: tuple[str, str], open311_schema: schemathesis.BaseSchema
) -> None:
    base_url, key = open311_server
    operations = [result.ok() for result in open311_schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} == {
        "GET /open311/v2/services.json",
        "GET /open311/v2/services/{service_code}.json",
        "GET /open311/v2/requests.json",
        "POST /open311/v2/requests.json",
        "GET /open311/v2/requests/{service_request_id}.json",
    }
    statuses: dict[str, set[int]] = {}
    for operation in operations:
        check_operation(operation, base_url, key, statuses)
    # The valid key was used: the endpoints answered with data, not only errors.
    assert 200 in statuses["GET /open311/v2/requests.json"]
    assert 201 in statuses["POST /open311/v2/requests.json"]


def test_openapi_document_describes_open311(open311_server: tuple[str, str]) -> None:
    base_url, _ = open311_server
    document = httpx.get(f"{base_url}/openapi.json").json()
    paths = document["paths"]
    for path in (
        "/open311/v2/services.json",
        "/open311/v2/services/{service_code}.json",
        "/open311/v2/requests.json",
        "/open311/v2/requests/{service_request_id}.json",
    ):
        assert path in paths
    create = paths["/open311/v2/requests.json"]["post"]
    assert "application/x-www-form-urlencoded" in create["requestBody"]["content"]
    assert {"201", "400", "403"} <= set(create["responses"])
