"""Limits kept in the shared state hold across gateway instances: login delays, proofs of work
used once, filings per conversation — each object of one gateway, the storage shared."""

from __future__ import annotations

from dataclasses import replace

from webhook.agency.throttle import LoginThrottle
from webhook.config import AbuseLimits, Rate
from webhook.conversation.admission import Admission
from webhook.security import pow
from webhook.store.state import StateBackend

KEY = b"the same signing key on every gateway"
Pair = tuple[StateBackend, StateBackend]


async def test_login_failures_on_one_gateway_delay_the_other(pair: Pair) -> None:
    a, b = (LoginThrottle(key=KEY, backend=backend) for backend in pair)
    for attempt in range(4):
        await (a if attempt % 2 else b).failure("agent-dole", "203.0.113.5")
    assert await a.retry_after("agent-dole", "203.0.113.5") == 0  # the first ones are free
    await b.failure("agent-dole", "203.0.113.5")  # the fifth, on the other gateway
    assert await a.retry_after("agent-dole", "198.51.100.1") >= 1  # the account's delay
    # the agent's own browser (device cookie from gateway a) is not held back on gateway b
    device = b.device_of(a.device_cookie("agent-dole"), "agent-dole")
    assert device is not None and await b.retry_after("agent-dole", "203.0.113.5", device) == 0
    await b.success("agent-dole", "198.51.100.1")
    assert await a.retry_after("agent-dole", "198.51.100.1") == 0


async def test_a_proof_of_work_is_accepted_once_whichever_gateway_sees_it(pair: Pair) -> None:
    a, b = (pow.ProofOfWork(8, KEY, backend=backend) for backend in pair)
    challenge = a.challenge("web-citoyen").challenge
    proof = f"{challenge}:{pow.solve(challenge, 8)}"
    assert await b.verify("web-citoyen", proof)
    assert not await a.verify("web-citoyen", proof)
    assert not await b.verify("web-citoyen", proof)


async def test_filings_per_conversation_are_counted_across_gateways(pair: Pair) -> None:
    limits = replace(AbuseLimits(), filings_per_conversation=Rate(3, 1 / 3600))
    a, b = (Admission(limits, KEY, backend) for backend in pair)
    refusals = [
        await (a if n % 2 else b).filing("web-repete", "198.51.100.30", None) for n in range(4)
    ]
    assert refusals[:3] == [None, None, None]
    assert refusals[3] is not None and refusals[3].scope == "conversation"
    assert refusals[3].retry_after > 3000
    # the address's token taken before the refusal was given back: another conversation files
    assert await a.filing("web-autre", "198.51.100.30", None) is None
