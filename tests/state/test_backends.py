"""The gateways' shared state (webhook.store.state) on every backend: in memory, SQLite,
PostgreSQL and Redis — each test uses two backend objects on one storage, as two gateway
processes do."""

from __future__ import annotations

import asyncio
import time

import pytest
from state_support import Clock

from webhook.store.state import StateBackend, StateBusy

Pair = tuple[StateBackend, StateBackend]


async def _lease_expires(backend: StateBackend, clock: Clock, conversation: str) -> str:
    """Let a held lease run out (Redis: its real expiry; the others: the shared clock), then
    take it: the new token."""
    if backend.name != "redis":
        clock.advance(60)
        token = await backend.acquire(conversation, 5)
        assert token is not None
        return token
    deadline = time.monotonic() + 10
    while (token := await backend.acquire(conversation, 5)) is None:
        assert time.monotonic() < deadline, "the lease never expired"
        await asyncio.sleep(0.05)
    return token


async def test_a_state_saved_by_one_gateway_is_loaded_by_the_other(pair: Pair) -> None:
    a, b = pair
    assert await b.load("web-1", 3600) is None
    token = await a.acquire("web-1", 5)
    assert token is not None
    assert await a.save(
        "web-1",
        {"v": 1, "mode": "guided"},
        owner="203.0.113.9",
        in_report=True,
        token=token,
        release=True,
    )
    loaded = await b.load("web-1", 3600)
    assert loaded is not None and loaded.data == {"v": 1, "mode": "guided"}
    # released with the save: the other gateway takes the lease at once
    assert await b.acquire("web-1", 5) is not None


async def test_an_idle_state_is_not_loaded(pair: Pair, clock: Clock) -> None:
    a, b = pair
    token = await a.acquire("web-idle", 5)
    assert token is not None
    await a.save("web-idle", {"x": 1}, owner=None, in_report=False, token=token, release=True)
    clock.advance(7200)
    assert await b.load("web-idle", 3600) is None
    assert await b.load("web-idle", 3 * 3600) is not None


async def test_the_lease_is_exclusive_and_a_lost_lease_cannot_save(
    pair: Pair, clock: Clock
) -> None:
    a, b = pair
    ttl = 0.5 if a.name == "redis" else 5.0  # Redis: its own clock runs the lease out
    first = await a.acquire("web-2", ttl)
    assert first is not None
    assert await b.acquire("web-2", ttl) is None  # held by the other gateway
    assert await a.renew("web-2", first, ttl)
    second = await _lease_expires(b, clock, "web-2")  # the first holder died
    # compare-and-set: the first holder's late save is refused, the new holder's accepted
    assert not await a.save("web-2", {"late": True}, owner=None, in_report=False, token=first)
    assert not await a.renew("web-2", first, 5)
    assert await b.save("web-2", {"new": True}, owner=None, in_report=False, token=second)
    await a.release("web-2", first)  # not its lease any more: nothing happens
    assert await a.acquire("web-2", 5) is None
    await b.release("web-2", second)
    assert await a.acquire("web-2", 5) is not None
    loaded = await a.load("web-2", 3600)
    assert loaded is not None and loaded.data == {"new": True}


async def test_turns_of_one_conversation_on_two_gateways_never_interleave(pair: Pair) -> None:
    """Twenty turns, half on each gateway, each loading a counter, yielding to the others
    mid-turn, and saving it plus one: without the lease, updates are lost."""
    a, b = pair

    async def one_turn(backend: StateBackend) -> None:
        async with backend.leased("web-counter", ttl=5, wait=60) as lease:
            stored = await backend.load("web-counter", 3600)
            count = stored.data["count"] if stored is not None else 0
            await asyncio.sleep(0)  # another turn gets the loop here
            await backend.load("web-counter", 3600)
            lease.released = await backend.save(
                "web-counter",
                {"count": count + 1},
                owner=None,
                in_report=False,
                token=lease.token,
                release=True,
            )

    await asyncio.gather(*(one_turn(a if i % 2 else b) for i in range(20)))
    stored = await a.load("web-counter", 3600)
    assert stored is not None and stored.data == {"count": 20}


async def test_a_lease_held_too_long_makes_the_next_turn_give_up(pair: Pair) -> None:
    a, b = pair
    async with a.leased("web-stuck", ttl=5):
        with pytest.raises(StateBusy):
            async with b.leased("web-stuck", ttl=5, wait=0.2):
                pass
    async with b.leased("web-stuck", ttl=5, wait=5):
        pass


async def test_notes_left_on_one_gateway_are_taken_once_on_the_other(pair: Pair) -> None:
    a, b = pair
    await a.add_note("web-3", {"filed": {"reference": "39-2026-000001"}})
    await a.add_note("web-3", {"credits_used": 1})
    assert await b.take_notes("web-3") == [
        {"filed": {"reference": "39-2026-000001"}},
        {"credits_used": 1},
    ]
    assert await a.take_notes("web-3") == []


async def test_a_token_bucket_is_shared_and_refills(pair: Pair, clock: Clock) -> None:
    a, b = pair
    started = clock()
    decisions = [await (a if i % 2 else b).hit("sender:web-4", 3, 0.5) for i in range(4)]
    elapsed = clock() - started
    assert [d.allowed for d in decisions] == [True, True, True, False]
    # one token refills in 2 s, less the (wall-clock) time the four hits took: a loaded CI
    # machine took 0.24 s over PostgreSQL
    assert 2.0 - elapsed - 0.05 <= decisions[-1].retry_after <= 2.0 + 0.05
    assert not (await a.hit("sender:web-4", 3, 0.5)).allowed
    assert (await a.hit("sender:web-5", 3, 0.5)).allowed  # per key
    clock.advance(2.1)
    assert (await b.hit("sender:web-4", 3, 0.5)).allowed
    assert not (await a.hit("sender:web-4", 3, 0.5)).allowed
    clock.advance(3600)  # full again, never more than the burst
    assert [(await a.hit("sender:web-4", 3, 0.5)).allowed for _ in range(4)] == [
        True,
        True,
        True,
        False,
    ]


async def test_several_buckets_take_a_token_from_each_or_from_none(pair: Pair) -> None:
    a, b = pair
    assert (await a.hit("global", 1, 0.001)).allowed  # now empty
    index, decision = await b.hit_all([("address:x", 2, 0.001), ("global", 1, 0.001)])
    assert index == 1 and not decision.allowed and decision.retry_after > 100
    # the address's token was given back: two are still there
    assert [(await a.hit("address:x", 2, 0.001)).allowed for _ in range(3)] == [
        True,
        True,
        False,
    ]


async def test_entries_first_time_counts_and_expiry(pair: Pair, clock: Clock) -> None:
    a, b = pair
    assert await a.add("pow:abc", 1, 600)
    assert not await b.add("pow:abc", 1, 600)  # used once, whichever gateway sees it again
    await a.put("tg_button:1:k1", {"p": "/choisir"}, 600)
    assert await b.get("tg_button:1:k1") == {"p": "/choisir"}
    assert [await (a if i % 2 else b).incr("login:x", 1000.0 + i, 600) for i in range(3)] == [
        1,
        2,
        3,
    ]
    assert await a.count("login:x") == 3 and await b.get("login:x") == 1002.0
    await b.delete("login:x")
    assert await a.count("login:x") == 0 and await a.get("login:x") is None
    if a.name != "redis":  # Redis expires keys on its own clock (checked below)
        clock.advance(601)
        assert await b.get("tg_button:1:k1") is None
        assert await b.add("pow:abc", 1, 600)  # expired: a new first time
        return
    assert await a.add("short", 1, 0.2)
    deadline = time.monotonic() + 10
    while not await b.add("short", 1, 0.2):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


async def test_bounds_push_out_an_addresss_oldest_but_never_a_report_in_progress(
    pair: Pair, clock: Clock
) -> None:
    a, b = pair
    if a.name == "redis":  # bounded by their idle expiry and Redis' maxmemory instead
        assert await a.evict("flooder", 0, 0, 3600) == 0
        return

    async def save(backend: StateBackend, cid: str, owner: str, in_report: bool) -> None:
        token = await backend.acquire(cid, 5)
        assert token is not None
        await backend.save(
            cid, {"c": cid}, owner=owner, in_report=in_report, token=token, release=True
        )
        clock.advance(1)

    await save(a, "web-report", "citizen", True)
    for n in range(5):
        await save(a if n % 2 else b, f"web-bot{n}", "flooder", False)
    assert await a.conversation_count(3600) == 6
    assert await b.evict("flooder", 3, 100, 3600) == 2  # the flooder's two oldest
    assert await a.load("web-bot0", 3600) is None and await a.load("web-bot2", 3600) is not None
    assert await a.evict(None, 500, 2, 3600) == 2  # the oldest not in a report
    assert await b.load("web-report", 3600) is not None  # the oldest, but in a report
    assert await a.conversation_count(3600) == 2


async def test_expire_deletes_what_is_idle_full_or_expired(pair: Pair, clock: Clock) -> None:
    a, b = pair
    if a.name == "redis":
        assert await a.expire(3600) == {}  # every key carries its own expiry
        return
    token = await a.acquire("web-old", 5)
    assert token is not None
    await a.save("web-old", {"x": 1}, owner=None, in_report=True, token=token, release=True)
    held = await a.acquire("web-held", 5)
    await a.hit("sender:old", 5, 1.0)
    await a.put("tg_button:1:old", {"p": "/x"}, 60)
    clock.advance(2 * 3600)
    await a.renew("web-held", held or "", 5)  # a turn still running there
    counts = await b.expire(3600, dry_run=True)
    assert counts["conversations"] == 1 and counts["buckets"] == 1 and counts["entries"] == 1
    assert await a.load("web-old", 3600 * 10) is not None  # a dry run changes nothing
    assert await b.expire(3600) == counts
    assert await a.load("web-old", 3600 * 10) is None
    assert await a.acquire("web-held", 5) is None  # kept: its lease is held


async def test_ping(pair: Pair) -> None:
    assert await pair[0].ping()
    if pair[0].name == "redis":
        from webhook.store.state import RedisStateBackend

        nowhere = RedisStateBackend("redis://127.0.0.1:9/0")
        try:
            assert not await nowhere.ping()  # nothing listens there
        finally:
            await nowhere.close()
