"""Property-based check of the cellule de veille's API with schemathesis, against the gateway's
own OpenAPI document, served by uvicorn (real app, SQLite file with synthetic reports and
alerts) with a valid observer token: no server error, documented status codes and content types,
responses valid against their schemas."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator

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

from webhook.agency import auth
from webhook.app import create_app
from webhook.config import Settings
from webhook.store.db import create_engine, migrate, session_factory, utcnow
from webhook.veille import alerts, synthetic
from webhook.veille.config import get_config

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
        config = get_config()
        now = utcnow()
        generator = synthetic.Generator("04", config, 7)
        rows = list(generator.background(now - dt.timedelta(weeks=14), now, 1500))
        rows += list(
            generator.wave(
                synthetic.Wave(
                    ("04088",), "arnaque", "faux_conseiller", now - dt.timedelta(days=3), 2, 8
                )
            )
        )
        await synthetic.insert_rows(sessions, rows)
        await alerts.recompute(sessions, "04", now, config, deliver=False)
        _, clear = await auth.create_api_token(sessions, "04-prefecture", "outil", "observer")
        return clear
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def veille_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    var_dir = tmp_path_factory.mktemp("veille-api")
    url = f"sqlite+aiosqlite:///{var_dir / 'veille.db'}"
    results: list[str] = []
    seeding = threading.Thread(target=lambda: results.append(asyncio.run(_seed(url))))
    seeding.start()
    seeding.join()
    token = results[0]
    app = create_app(
        Settings(
            var_dir=var_dir,
            database_url=url,
            rasa_url="http://127.0.0.1:9",
            secret_key="clé de test suffisamment longue pour signer les sessions",
        )
    )
    port = _free_port()
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
        yield f"http://127.0.0.1:{port}", token
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def check_operation(
    operation: schemathesis.APIOperation, base_url: str, token: str, statuses: dict[str, set[int]]
) -> None:
    """Schemathesis' cases of one operation with the valid token; every other case asks for the
    token's département, so that answers with data are checked too."""
    seen = statuses.setdefault(operation.label, set())
    counter = iter(range(1_000_000))

    @given(case=operation.as_strategy())
    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def run(case: schemathesis.Case) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
        if case.query is not None and "departement" in case.query and next(counter) % 2:
            case.query["departement"] = "04"
        response = case.call_and_validate(base_url=base_url, checks=CHECKS)
        seen.add(response.status_code)

    run()


def test_the_veille_api_conforms_to_its_openapi_document(veille_server: tuple[str, str]) -> None:
    base_url, token = veille_server
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json").include(
        path_regex=r"^/api/v1/(veille/|agency/statistics)"
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} == {
        "GET /api/v1/veille/alerts",
        "GET /api/v1/veille/stats.csv",
        "GET /api/v1/agency/statistics",
    }
    statuses: dict[str, set[int]] = {}
    for operation in operations:
        check_operation(operation, base_url, token, statuses)
    # the valid token and département were used: the endpoints answered with data
    assert 200 in statuses["GET /api/v1/veille/alerts"]
    assert 200 in statuses["GET /api/v1/veille/stats.csv"]
    assert 200 in statuses["GET /api/v1/agency/statistics"]
