"""``tranquillite purge`` reaches the gateways' shared state: conversation states idle for
``conversation_state_hours`` (guided-mode answers), expired entries and full buckets go; a
conversation still within the period stays."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from webhook.store.db import create_engine, migrate
from webhook.store.retention import PolicyError, RetentionPolicy, purge_main
from webhook.store.state import SqlStateBackend


async def _save(backend: SqlStateBackend, conversation_id: str, answers: dict[str, str]) -> None:
    token = await backend.acquire(conversation_id, 5)
    assert token is not None
    await backend.save(
        conversation_id,
        {"answers": answers},
        owner=None,
        in_report=True,
        token=token,
        release=True,
    )


def test_purge_deletes_idle_conversation_states(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'tranquillite.db'}"
    policy = tmp_path / "retention.yml"
    policy.write_text(
        "default_days: 365\nconversation_days: 7\nconversation_state_hours: 2\n", "utf-8"
    )

    async def seed() -> None:
        engine = create_engine(url)
        await migrate(engine)
        three_hours_ago = SqlStateBackend(engine, clock=lambda: time.time() - 3 * 3600)
        await _save(three_hours_ago, "web-ancienne", {"lieu": "12 rue des Arènes"})
        await three_hours_ago.put("tg_button:1:k", {"p": "/x"}, 60)
        await three_hours_ago.hit("sender:web-ancienne", 5, 1.0)
        now = SqlStateBackend(engine)
        await _save(now, "web-recente", {"lieu": "Place du marché"})
        await three_hours_ago.close()
        await now.close()
        await engine.dispose()

    async def left() -> set[str]:
        engine = create_engine(url)
        backend = SqlStateBackend(engine)
        kept = {c for c in ("web-ancienne", "web-recente") if await backend.load(c, 10**6)}
        assert await backend.get("tg_button:1:k") is None
        await backend.close()
        await engine.dispose()
        return kept

    asyncio.run(seed())
    monkeypatch.setenv("TRANQUILLITE_DATABASE_URL", url)
    monkeypatch.setenv("TRANQUILLITE_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("TRANQUILLITE_REDIS_URL", raising=False)
    assert purge_main(["--dry-run", "--policy", str(policy)]) == 0
    assert "1 gateway conversation state(s) would be deleted" in capsys.readouterr().out
    assert purge_main(["--policy", str(policy)]) == 0
    out = capsys.readouterr().out
    assert "1 gateway conversation state(s) deleted (idle for more than 2 hours)" in out
    assert "1 rate bucket(s)" in out
    assert asyncio.run(left()) == {"web-recente"}


def test_the_policy_checks_the_state_period(tmp_path: Path) -> None:
    path = tmp_path / "retention.yml"
    path.write_text("default_days: 365\nconversation_state_hours: 0\n", "utf-8")
    with pytest.raises(PolicyError, match="conversation_state_hours"):
        RetentionPolicy.load(path)
    assert RetentionPolicy.load().conversation_state_hours == 6  # the shipped policy
