"""Finding 1 — no body-size limit: a 20 MB JSON body to the chat was read and parsed (+500 MB RSS),
unauthenticated, also on the internal API and the agency API (bodies were parsed before the
token was checked). Now every route has a limit, enforced before anything reads the body."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from security_support import Gateway, internal_headers

MB = 1024 * 1024


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """Limits are read before any database work: SQLite is enough."""
    return f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"


CHUNK = b" " * (64 * 1024)


class Body:
    """A 20 MB request body sent in chunks, without Content-Length (chunked): counts how much of
    it the server pulled."""

    def __init__(self, size: int = 20 * MB, prefix: bytes = b'{"sender": "x", "text": "') -> None:
        self.size = size
        self.prefix = prefix
        self.consumed = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.prefix
        self.consumed += len(self.prefix)
        while self.consumed < self.size:
            self.consumed += len(CHUNK)
            yield CHUNK


ROUTES = [
    ("/api/v1/chat", {}),
    ("/internal/v1/reports", {}),  # no token at all
    ("/internal/v1/reports", internal_headers()),
    ("/api/v1/agency/tickets/39-2026-000001/answer", {"Authorization": "Bearer tq_faux"}),
    ("/open311/v2/requests.json", {"Content-Type": "application/x-www-form-urlencoded"}),
    ("/agence/login", {"Content-Type": "application/x-www-form-urlencoded"}),
]


@pytest.mark.parametrize(
    ("path", "headers"),
    ROUTES,
    ids=[
        f"{p}{'+token' * bool(h.get('Authorization', '').startswith('Bearer i'))}"
        for p, h in ROUTES
    ],
)
async def test_huge_streamed_body_is_refused_before_it_is_read(
    gateway: Gateway, path: str, headers: dict[str, str]
) -> None:
    body = Body()
    response = await gateway.client().post(
        path, content=body, headers={"Content-Type": "application/json", **headers}
    )
    if path.startswith("/internal/") and "Authorization" not in headers:
        # the internal API checks its token before it reads the body at all
        assert response.status_code == 401
    else:
        assert response.status_code == 413
    assert body.consumed < 2 * MB, f"{body.consumed} bytes read"


async def test_declared_length_is_refused_without_reading_and_each_route_speaks_its_language(
    gateway: Gateway,
) -> None:
    body = Body()
    client = gateway.client()
    chat = await client.post(
        "/api/v1/chat",
        content=body,
        headers={"Content-Type": "application/json", "Content-Length": str(20 * MB)},
    )
    assert chat.status_code == 413
    assert body.consumed == 0  # answered from the declared length alone
    # the widget shows the polite text of the chat's reply model
    assert "trop volumineux" in chat.json()["messages"][0]["text"]
    open311 = await client.post(
        "/open311/v2/requests.json",
        content=Body(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert open311.status_code == 413 and open311.json()[0]["code"] == 413
    # a normal message still goes through, and the service answers while it is attacked
    ok = await gateway.chat("citoyen1", text="Bonjour")
    assert ok.status_code == 200
    assert (await client.get("/health")).status_code == 200
