"""Failover on the local cluster (issue 16): HAProxy + 2 gateways + 2 Rasa (+ 2 action servers)
+ outbox and veille workers, on PostgreSQL and Redis (webhook.ops.cluster).

100 scripted conversations (free-text reports answered up to the summary, the contact question
answered "Non, rester anonyme", then confirmed) run through the load balancer, 10 at a time; a
third of the way through, one gateway and one Rasa server are killed with SIGKILL. Every
conversation must end with a reference, and every confirmed report must be stored exactly once
(the action server files through the load balancer; a message retried after a lost answer files
idempotently, webhook.store.tickets.conversation_key).

A client whose request was cut by the kill (HAProxy answers 502, or the connection drops) sends
the same message again, as the chat page lets the citizen do; nothing else is retried. The
reference is read from the reply's text or from its ``tickets`` (what the chat page keeps to
follow the report): when the answer to a confirmation is lost with a killed gateway, the filing
reaches the next turn through the shared state, whatever the bot says to the repeated "yes".
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import POSTGRES_ADMIN_DSN
from webhook import replies
from webhook.ops.cluster import ONE_ADDRESS_BENCH_LIMITS, Cluster, ClusterConfig
from webhook.ops.supervisor import wait_ready

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

CONVERSATIONS = 100
CONCURRENCY = 10
# SIGKILL once this many messages were answered (of about 5 per conversation)
KILL_AFTER_MESSAGES = 170
MAX_TURNS = 14
MAX_RESENDS = 4
REFERENCE_RE = re.compile(r"\b(\d{2,3}|2A|2B)-\d{4}-\d{6}\b")


@dataclass(frozen=True)
class Script:
    description: str
    place: str
    commune: str
    departement: str


SCRIPTS = (
    Script(
        "Mes voisins mettent la musique à fond et crient toutes les nuits",
        "Dans mon immeuble, 12 rue des Arènes",
        "Dole",
        "39",
    ),
    Script(
        "Des sacs poubelle sont déposés tous les jours derrière le stade",
        "derrière le stade municipal",
        "Forcalquier",
        "04",
    ),
    Script(
        "Des voitures sont garées sur le trottoir devant l'école tous les matins",
        "devant l'école primaire, rue de la Gare",
        "Manosque",
        "04",
    ),
)


@dataclass
class Outcome:
    sender: str
    script: Script
    reference: str | None = None
    resends: int = 0
    # the reference reached the client only in the answer's ``tickets`` (what the chat page
    # keeps for follow-up), not in a text: the answer that said it was lost with a killed gateway
    reference_from_tickets_only: bool = False
    turns: list[str] = field(default_factory=list)  # what the bot asked (for a failure message)
    problem: str | None = None


@dataclass
class Progress:
    answered: int = 0
    answered_at_kill: int | None = None
    kill_requested: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture(scope="module")
def cluster(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    config = ClusterConfig(
        gateways=2,
        rasa=2,
        database="tranquillite_cluster_test",
        fresh_database=True,
        postgres_admin_dsn=POSTGRES_ADMIN_DSN.rsplit("/", 1)[0] + "/postgres",
        var_dir=tmp_path_factory.mktemp("cluster"),
        gateway_env=dict(ONE_ADDRESS_BENCH_LIMITS),
        # one Rasa alone on 2 shared cores after the kill, waiting out the dead instance's
        # conversation locks: a slow answer is not a dead instance (HAProxy waits 120 s)
        rasa_timeout=100.0,
    )
    running = Cluster.build(config, trained_model)
    running.start()
    try:
        yield running
    finally:
        running.stop()
        assert all(not p.alive() for p in running.processes)


def texts(messages: list[dict[str, Any]]) -> str:
    return "\n".join(m.get("text") or "" for m in messages)


def button(messages: list[dict[str, Any]], title: str) -> str | None:
    for message in messages:
        for b in message.get("buttons") or []:
            if b.get("title") == title:
                return str(b["payload"])
    return None


def next_message(script: Script, messages: list[dict[str, Any]]) -> dict[str, str] | None:
    """What a resident following ``script`` answers to the bot's last messages."""
    said = texts(messages)
    confirm = button(messages, "Oui, envoyer")
    if confirm is not None:
        return {"payload": confirm}
    if "recontacte" in said:
        anonymous = button(messages, "Non, rester anonyme")
        return {"payload": anonymous} if anonymous else {"text": "Non, rester anonyme"}
    if "commune" in said.lower():
        return {"text": script.commune}
    if "Où" in said:
        return {"text": script.place}
    if "epuis quand" in said:
        return {"text": "depuis deux semaines"}
    return None


async def send(
    client: httpx.AsyncClient, outcome: Outcome, body: dict[str, str], progress: Progress
) -> dict[str, Any]:
    """POST one message; the same message again if the request was cut (502/503, dropped)."""
    for attempt in range(MAX_RESENDS + 1):
        try:
            response = await client.post("/api/v1/chat", json={"sender": outcome.sender, **body})
        except httpx.TransportError:
            response = None
        if response is not None and response.status_code == 200:
            progress.answered += 1
            if progress.answered >= KILL_AFTER_MESSAGES:
                progress.kill_requested.set()
            answer: dict[str, Any] = response.json()
            return answer
        if response is not None and response.status_code not in (502, 503, 504):
            raise AssertionError(f"chat answered {response.status_code}: {response.text[:300]}")
        if attempt < MAX_RESENDS:
            outcome.resends += 1
    raise AssertionError("message not answered after resends")


async def converse(client: httpx.AsyncClient, outcome: Outcome, progress: Progress) -> None:
    body: dict[str, str] | None = {"text": outcome.script.description}
    degraded = replies.message("g_degraded")
    for _ in range(MAX_TURNS):
        assert body is not None
        answer = await send(client, outcome, body, progress)
        messages = answer["messages"]
        said = texts(messages)
        outcome.turns.append(said[:160])
        if degraded in said:
            outcome.problem = "degraded (guided) mode although one Rasa instance was up"
            return
        match = REFERENCE_RE.search(said)
        if match:
            outcome.reference = match.group(0)
            return
        filed = [t["reference"] for t in answer.get("tickets") or []]
        if filed:
            outcome.reference = filed[0]
            outcome.reference_from_tickets_only = True
            return
        body = next_message(outcome.script, messages)
        if body is None:
            outcome.problem = "unexpected question"
            return
    outcome.problem = "no reference after the maximum number of turns"


async def run_conversations(cluster: Cluster, run_id: str) -> tuple[list[Outcome], Progress]:
    outcomes = [
        Outcome(sender=f"fo-{run_id}-{i:03d}", script=SCRIPTS[i % len(SCRIPTS)])
        for i in range(CONVERSATIONS)
    ]
    progress = Progress()
    queue: asyncio.Queue[Outcome] = asyncio.Queue()
    for outcome in outcomes:
        queue.put_nowait(outcome)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            outcome = queue.get_nowait()
            try:
                await converse(client, outcome, progress)
            except AssertionError as exc:
                outcome.problem = str(exc)

    async def killer() -> None:
        await progress.kill_requested.wait()
        progress.answered_at_kill = progress.answered
        # one gateway and one Rasa server die at once, as in a crash
        await asyncio.gather(
            asyncio.to_thread(cluster.process("gateway-1").kill),
            asyncio.to_thread(cluster.process("rasa-1").kill),
        )

    limits = httpx.Limits(max_connections=CONCURRENCY + 4)
    async with httpx.AsyncClient(base_url=cluster.lb_url, timeout=180.0, limits=limits) as client:
        kill_task = asyncio.create_task(killer())
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
        if not kill_task.done():
            kill_task.cancel()
    return outcomes, progress


def stored_tickets(cluster: Cluster, run_id: str) -> list[tuple[str, str, str]]:
    dsn = "postgresql://" + cluster.database_url.split("://", 1)[1]
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT conversation_id, reference, report_type FROM tickets "
            "WHERE conversation_id LIKE %s",
            (f"web-fo-{run_id}-%",),
        ).fetchall()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def delivery_and_trackers(cluster: Cluster, run_id: str) -> tuple[dict[str, int], int]:
    """The run's outbox rows by status, and how many of its conversations Rasa's tracker store
    (PostgreSQL) holds."""
    dsn = "postgresql://" + cluster.database_url.split("://", 1)[1]
    pattern = f"web-fo-{run_id}-%"
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT o.status, COUNT(*) FROM outbox o JOIN tickets t ON t.id = o.ticket_id "
            "WHERE t.conversation_id LIKE %s GROUP BY o.status",
            (pattern,),
        ).fetchall()
        trackers = conn.execute(
            "SELECT COUNT(DISTINCT sender_id) FROM events WHERE sender_id LIKE %s", (pattern,)
        ).fetchone()
    return {str(status): int(count) for status, count in rows}, int(trackers[0] if trackers else 0)


def diagnosis(cluster: Cluster, outcomes: list[Outcome] | None = None) -> str:
    """What a failure message needs: which processes live, the first failed conversations, and
    the warning lines of each log (logs never hold what citizens wrote)."""
    lines = [
        "processes: "
        + ", ".join(f"{p.name}={'up' if p.alive() else 'dead'}" for p in cluster.processes)
    ]
    failed = [o for o in outcomes or [] if o.reference is None]
    if outcomes is not None:
        lines.append(f"{len(failed)} conversations without a reference")
    for o in failed[:3]:
        lines.append(f"  {o.sender}: {o.problem} (resent {o.resends}) after {o.turns[-2:]}")
    for process in cluster.processes:
        if not process.log_path.exists():
            continue
        log = process.log_path.read_text(errors="replace").splitlines()
        notable = [
            line[:200]
            for line in log
            if any(w in line for w in ("WARNING", "ERROR", "Error", "rror:", "Traceback"))
        ]
        if notable:
            lines.append(f"{process.name}: {len(notable)} warnings/errors, last:")
            lines.extend("  " + line for line in notable[-6:])
        if process.name.startswith("rasa-") and log:
            # a crashed Rasa's last words, whatever their level
            lines.append(f"{process.name}'s last lines:")
            lines.extend("  " + line[:200] for line in log[-3:])
    return "\n".join(lines)


def test_the_cluster_is_wired_as_documented(cluster: Cluster) -> None:
    # HAProxy checks both gateways and sees them up; both Rasa servers take a conversation's
    # lock in Redis and keep it in PostgreSQL; action servers file through the load balancer
    assert set(cluster.backend_status()) == {"gateway-1", "gateway-2"}
    for i in (1, 2):
        endpoints = (cluster.config.var_dir / "run" / f"endpoints-rasa-{i}.yml").read_text()
        assert "lock_store:\n  type: bot.runtime.lock_store.LeasedRedisLockStore" in endpoints
        assert "dialect: postgresql" in endpoints
        assert cluster.process(f"actions-{i}").env["TRANQUILLITE_GATEWAY_URL"] == cluster.lb_url
        gateway = cluster.process(f"gateway-{i}").env
        assert gateway["TRANQUILLITE_RASA_URLS"] == ",".join(cluster.rasa_urls)
        assert gateway["TRANQUILLITE_OUTBOX_WORKER"] == "off"
    assert cluster.process("outbox-worker").alive()
    health = httpx.get(f"{cluster.lb_url}/health", timeout=10.0).json()
    assert health["database"] is True and health["rasa"] is True


def test_killing_a_gateway_and_a_rasa_loses_and_duplicates_no_report(cluster: Cluster) -> None:
    run_id = secrets.token_hex(3)
    outcomes, progress = asyncio.run(run_conversations(cluster, run_id))

    # the kill happened mid-way: both processes are dead, and many messages came after it
    assert progress.answered_at_kill is not None, "the run ended before the kill"
    assert not cluster.process("gateway-1").alive()
    assert not cluster.process("rasa-1").alive()
    failed = [o for o in outcomes if o.reference is None]
    assert not failed, diagnosis(cluster, outcomes)
    after_kill = progress.answered - progress.answered_at_kill
    assert after_kill >= progress.answered // 3, (progress.answered_at_kill, progress.answered)
    cluster.wait_backend_down("gateway-1")

    for outcome in outcomes:
        assert outcome.reference is not None
        assert outcome.reference.startswith(outcome.script.departement + "-"), outcome

    # every confirmed report stored exactly once, under its own conversation and reference
    rows = stored_tickets(cluster, run_id)
    by_conversation: dict[str, list[str]] = {}
    for conversation_id, reference, _ in rows:
        by_conversation.setdefault(conversation_id, []).append(reference)
    duplicated = {c: refs for c, refs in by_conversation.items() if len(refs) > 1}
    assert not duplicated, f"reports stored more than once: {duplicated}"
    expected = {f"web-{o.sender}": o.reference for o in outcomes}
    assert {c: refs[0] for c, refs in by_conversation.items()} == expected

    # the outbox worker (its own process) delivers every one of them to its agencies, and the
    # conversations are in Rasa's tracker store in PostgreSQL, shared by both Rasa servers
    deadline = time.monotonic() + 120
    while True:
        statuses, trackers = delivery_and_trackers(cluster, run_id)
        if set(statuses) == {"delivered"} or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert set(statuses) == {"delivered"}, statuses
    assert statuses["delivered"] >= len(outcomes)
    assert trackers == len(outcomes)

    # the failover was exercised: the surviving gateway moved conversations off the dead Rasa
    # server, and never fell back to the guided mode
    survivor_log = cluster.process("gateway-2").log_path.read_text(errors="replace")
    dead_rasa = cluster.rasa_urls[0]
    assert f"Rasa instance {dead_rasa} unavailable" in survivor_log
    assert "No Rasa instance answers" not in survivor_log
    # no log holds what the citizens wrote, Rasa's included when a killed gateway cut requests
    # (as typed, or JSON-escaped as Rasa's structured logs write it)
    written = [s.description for s in SCRIPTS] + [s.place for s in SCRIPTS]
    forms = {f for w in written for f in (w, json.dumps(w)[1:-1])}
    for process in cluster.processes:
        if process.log_path.exists():
            log = process.log_path.read_text(errors="replace")
            assert not [f for f in forms if f in log], f"message text in {process.name}'s log"
    print(
        f"\nfailover: {progress.answered} messages answered, {after_kill} after the kill, "
        f"{sum(o.resends for o in outcomes)} resent after a cut request, "
        f"{sum(o.reference_from_tickets_only for o in outcomes)} references received only in "
        "'tickets' (their answer was lost), "
        f"{len(rows)} tickets for {len(outcomes)} conversations"
    )


def ticket_of(cluster: Cluster, conversation_id: str) -> list[str]:
    dsn = "postgresql://" + cluster.database_url.split("://", 1)[1]
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT reference FROM tickets WHERE conversation_id = %s", (conversation_id,)
        ).fetchall()
    return [str(r[0]) for r in rows]


def ensure_gateway_1(cluster: Cluster) -> str:
    """gateway-1 running (started again if a test killed it) and in HAProxy's rotation; its URL."""
    gateway = cluster.process("gateway-1")
    if not gateway.alive():
        gateway.start()
        wait_ready([gateway], time.monotonic(), 180.0)
        cluster.wait_backends_up(60.0)
    assert gateway.ready_url is not None
    # a gateway that has just started knows no Rasa instance yet: until one answered its probe,
    # conversations begin in the guided mode (by design); this test is about the confirmation
    deadline = time.monotonic() + 60
    while not httpx.get(gateway.ready_url, timeout=10.0).json().get("rasa"):
        assert time.monotonic() < deadline, "the restarted gateway sees no Rasa\n" + diagnosis(
            cluster
        )
        time.sleep(0.5)
    return gateway.ready_url.removesuffix("/health")


def post_keeping_the_outcome(url: str, body: dict[str, str], outcome: dict[str, Any]) -> None:
    try:
        outcome["answer"] = httpx.post(url, json=body, timeout=120.0)
    except httpx.TransportError:
        outcome["cut"] = True


def test_a_confirmation_whose_answer_dies_with_its_gateway(cluster: Cluster) -> None:
    """The answer to 'Oui, envoyer' is lost because its gateway is killed right after the report
    was filed: the citizen sends it again through the load balancer and gets the reference of
    the one ticket filed (the filing reaches the next turn through the shared state)."""
    script = SCRIPTS[0]
    for attempt in range(6):
        gateway_url = ensure_gateway_1(cluster)
        sender = f"lost-{secrets.token_hex(3)}-{attempt}"
        with httpx.Client(base_url=gateway_url, timeout=120.0) as direct:
            body: dict[str, str] | None = {"text": script.description}
            messages: list[dict[str, Any]] = []
            for _ in range(MAX_TURNS):
                assert body is not None, texts(messages) + "\n" + diagnosis(cluster)
                answer = direct.post("/api/v1/chat", json={"sender": sender, **body})
                assert answer.status_code == 200, answer.text
                messages = answer.json()["messages"]
                confirm = button(messages, "Oui, envoyer")
                if confirm is not None:
                    break
                body = next_message(script, messages)
            assert confirm is not None, texts(messages)

        outcome: dict[str, Any] = {}
        caller = threading.Thread(
            target=post_keeping_the_outcome,
            args=(f"{gateway_url}/api/v1/chat", {"sender": sender, "payload": confirm}, outcome),
        )
        caller.start()
        deadline = time.monotonic() + 120
        while caller.is_alive() and not ticket_of(cluster, f"web-{sender}"):
            assert time.monotonic() < deadline, "no ticket filed"
            time.sleep(0.02)
        if not caller.is_alive():
            continue  # answered before the kill could cut it: try again
        cluster.process("gateway-1").kill()
        caller.join(timeout=30)
        if "cut" not in outcome:
            continue
        with httpx.Client(base_url=cluster.lb_url, timeout=120.0) as client:
            again = client.post("/api/v1/chat", json={"sender": sender, "payload": confirm})
        assert again.status_code == 200, again.text
        filed = ticket_of(cluster, f"web-{sender}")
        assert len(filed) == 1, filed
        said = texts(again.json()["messages"])
        given = [t["reference"] for t in again.json().get("tickets") or []]
        # the repeated yes gets the reference of the one ticket, in words and for the chat page
        # to follow, and nothing that says it was not understood
        assert filed[0] in said and filed[0] in given, (said[:300], given)
        assert replies.message("no_reply") not in said
        assert "compris" not in said, said[:300]
        return
    pytest.fail("the kill never landed between the filing and the answer in 6 attempts")
