"""Conversation-affine routing over several Rasa instances (webhook.conversation.rasa_client),
against local stand-ins that speak Rasa's REST channel over real HTTP."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from webhook.conversation.rasa_client import (
    RasaClient,
    RasaUnavailable,
    parse_urls,
    rendezvous_order,
)


class StandInRasa:
    """A Rasa REST channel stand-in: answers ``GET /`` and ``POST /webhooks/rest/webhook``
    with its own name, and records the senders it served. Can be stopped and restarted on the
    same port (connections then refused, like a killed process)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.senders: list[str] = []
        # senders whose messages wait until ``release`` is set, or are answered 500
        self.held: set[str] = set()
        self.release = threading.Event()
        self.failing: set[str] = set()
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _reply(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._reply(200, {"version": "stand-in"})

            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                payload = json.loads(self.rfile.read(length))
                sender = payload["sender"]
                owner.senders.append(sender)
                if sender in owner.held:
                    owner.release.wait(timeout=30)
                if sender in owner.failing:
                    self._reply(500, {"error": "action failed"})
                    return
                try:
                    self._reply(200, [{"recipient_id": sender, "text": owner.name}])
                except BrokenPipeError:  # the client gave up waiting (the slow test)
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        self._server = None


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def servers() -> Iterator[list[StandInRasa]]:
    started = [StandInRasa(f"rasa-{i}") for i in range(3)]
    yield started
    for server in started:
        server.release.set()
        if server._server is not None:
            server.stop()


async def answered_by(client: RasaClient, sender: str) -> str:
    items = await client.send(sender, "bonjour")
    return str(items[0]["text"])


def test_parse_urls_accepts_one_url_a_list_or_a_comma_separated_string() -> None:
    assert parse_urls("http://a:5005/") == ("http://a:5005",)
    assert parse_urls("http://a:5005, http://b:5005,http://a:5005") == (
        "http://a:5005",
        "http://b:5005",
    )
    assert parse_urls(["http://a:5005", "http://b:5005"]) == ("http://a:5005", "http://b:5005")
    with pytest.raises(ValueError):
        parse_urls(" , ")


def test_rendezvous_moves_only_the_conversations_of_a_removed_instance() -> None:
    urls = [f"http://rasa-{i}:5005" for i in range(4)]
    keys = [f"web-{i}" for i in range(2000)]
    first = {k: rendezvous_order(k, urls)[0] for k in keys}
    # spread: every instance gets a fair share (expected 500 each)
    counts = Counter(first.values())
    assert set(counts) == set(urls)
    assert min(counts.values()) > 400
    # without rasa-2, only rasa-2's conversations move, to their second choice
    remaining = [u for u in urls if u != urls[2]]
    for key in keys:
        after = rendezvous_order(key, remaining)[0]
        if first[key] != urls[2]:
            assert after == first[key]
        else:
            assert after == rendezvous_order(key, urls)[1]


async def test_every_message_of_a_conversation_goes_to_the_same_instance(
    servers: list[StandInRasa],
) -> None:
    client = RasaClient([s.url for s in servers], timeout=5.0)
    try:
        owners: dict[str, str] = {}
        for round_ in range(3):
            for i in range(30):
                sender = f"web-conv-{i}"
                name = await answered_by(client, sender)
                if round_ == 0:
                    owners[sender] = name
                assert owners[sender] == name
        # conversations are spread over the three instances
        assert len(set(owners.values())) == 3
        for server in servers:
            assert set(server.senders) == {s for s, n in owners.items() if n == server.name}
    finally:
        await client.aclose()


async def test_a_conversation_moves_only_while_its_instance_is_down(
    servers: list[StandInRasa],
) -> None:
    clock = FakeClock()
    client = RasaClient([s.url for s in servers], timeout=5.0, initial_backoff=1.0, clock=clock)
    try:
        senders = [f"web-conv-{i}" for i in range(30)]
        owners = {s: await answered_by(client, s) for s in senders}
        victim = servers[0]
        victim.stop()
        moved = {s for s, n in owners.items() if n == victim.name}
        assert moved
        for sender in senders:
            name = await answered_by(client, sender)
            if sender in moved:
                assert name != victim.name
            else:
                assert name == owners[sender]  # the others never move
        down = client.instances[victim.url]
        assert not down.available
        # the down instance is not tried again before its backoff: its conversations stay moved
        served = {s: await answered_by(client, s) for s in moved}
        assert victim.name not in served.values()
        # a second failed probe doubles the backoff
        clock.now += 1.0
        await answered_by(client, next(iter(moved)))
        assert down.backoff == 2.0
        # back on its port: after the backoff, a probe brings it back and its conversations return
        victim.start()
        clock.now += 2.0
        for sender in senders:
            assert await answered_by(client, sender) == owners[sender]
        assert down.available
    finally:
        await client.aclose()


async def test_unavailable_only_when_no_instance_answers(servers: list[StandInRasa]) -> None:
    clock = FakeClock()
    client = RasaClient([s.url for s in servers], timeout=5.0, clock=clock)
    try:
        for server in servers[:2]:
            server.stop()
        # two of three down: every conversation is still answered, by the third
        for i in range(10):
            assert await answered_by(client, f"web-conv-{i}") == servers[2].name
        assert await client.is_ready()
        servers[2].stop()
        with pytest.raises(RasaUnavailable):
            await client.send("web-conv-0", "bonjour")
        assert not await client.is_ready()
    finally:
        await client.aclose()


async def test_a_single_url_works_as_before(servers: list[StandInRasa]) -> None:
    client = RasaClient(servers[1].url, timeout=5.0)
    try:
        assert await answered_by(client, "web-x") == servers[1].name
        assert await client.is_ready()
        servers[1].stop()
        with pytest.raises(RasaUnavailable):
            await client.send("web-x", "bonjour")
    finally:
        await client.aclose()


async def test_a_slow_conversation_on_a_live_instance_is_not_moved(
    servers: list[StandInRasa],
) -> None:
    """A timeout while the instance answers other messages: the message may still be processed
    there, so it is not sent to another instance, and the instance stays up for the others."""
    client = RasaClient([s.url for s in servers], timeout=1.0)
    try:
        senders = [f"web-conv-{i}" for i in range(12)]
        owners = {s: await answered_by(client, s) for s in senders}
        slow = senders[0]
        home = next(s for s in servers if s.name == owners[slow])
        home.held.add(slow)
        others = [s for s in senders if owners[s] == home.name and s != slow]
        assert others

        async def answer_others() -> None:
            for sender in others * 3:
                assert await answered_by(client, sender) == home.name

        slow_call = asyncio.create_task(client.send(slow, "bonjour"))
        await answer_others()
        with pytest.raises(RasaUnavailable):
            await slow_call
        assert client.instances[home.url].available
        assert home.senders.count(slow) == 2  # once before, once now: nowhere else
        for server in servers:
            if server is not home:
                assert slow not in server.senders
    finally:
        await client.aclose()


async def test_an_error_status_fails_the_turn_but_not_the_instance(
    servers: list[StandInRasa],
) -> None:
    client = RasaClient([s.url for s in servers], timeout=5.0)
    try:
        owner = await answered_by(client, "web-broken")
        home = next(s for s in servers if s.name == owner)
        home.failing.add("web-broken")
        with pytest.raises(RasaUnavailable):
            await client.send("web-broken", "bonjour")
        assert client.instances[home.url].available
        assert client.any_up()
        assert all("web-broken" not in s.senders for s in servers if s is not home)
    finally:
        await client.aclose()


async def test_a_gateway_without_rasa_url_has_no_instance_and_is_never_ready() -> None:
    """A gateway started without any Rasa URL (a gateway alone) answers in the guided mode."""
    client = RasaClient("", 1.0)
    assert client.urls == () and not client.any_up()
    assert not await client.is_ready()
    with pytest.raises(RasaUnavailable):
        await client.send("web-a", "bonjour")
    await client.aclose()


async def test_at_start_up_an_instance_is_up_only_once_it_answers(
    servers: list[StandInRasa],
) -> None:
    """The gateway often starts before Rasa has loaded its model: until an instance answers,
    ``is_ready`` (the gateway's /health) says no and messages are not sent to it blindly; once
    it listens, the next probe (after ``initial_backoff``, not a growing delay) finds it."""
    clock = FakeClock()
    late = servers[0]
    late.stop()
    client = RasaClient(late.url, timeout=5.0, initial_backoff=1.0, clock=clock)
    try:
        assert not client.any_up()
        assert not await client.is_ready()
        for _ in range(3):  # however many failed probes while it starts
            clock.now += 1.0
            with pytest.raises(RasaUnavailable):
                await client.send("web-early", "bonjour")
        assert client.instances[late.url].backoff == 1.0
        late.start()
        assert not client.any_up()  # nothing has answered yet
        clock.now += 1.0
        assert await client.is_ready()
        assert client.any_up()
        assert await answered_by(client, "web-early") == late.name
    finally:
        await client.aclose()
