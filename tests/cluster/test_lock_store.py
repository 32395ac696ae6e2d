"""Rasa's lock store for several instances (bot/runtime/lock_store.py), in the real Rasa
environment (.venv-rasa) against the real Redis server: built by Rasa's own factory from the
endpoints the launcher writes, one holder at a time across two instances, a waiter that outlasts
the lease lifetime behind a slow message, and a killed holder whose lease expires.

The same slow-message case is run with Rasa's own ``RedisLockStore``: it raises ``LockError``
(what its REST channel answers with an empty reply, seen once in the failover test), which shows
the case is the one that matters."""

from __future__ import annotations

import json
import os
import secrets

import pytest

from tests.rasa_python import run_in_rasa_env
from webhook.ops.supervisor import lock_store_config

pytestmark = pytest.mark.redis

REDIS_URL = os.environ.get("TRANQUILLITE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

CHECK = r"""
import asyncio, json, os, signal, subprocess, sys, time
import yaml
from rasa.core.lock_store import LockError, LockStore, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

config = yaml.safe_load(sys.argv[1])["lock_store"]
prefix = sys.argv[2]
config["key_prefix"] = prefix
config["lease_seconds"] = 1


def store():
    return LockStore.create(EndpointConfig.from_dict(dict(config)))


async def main():
    out = {}
    one, two = store(), store()
    out["class"] = type(one).__module__ + "." + type(one).__name__

    # one holder at a time across two instances: a non-atomic increment under the lock
    shared = {"value": 0, "inside": 0, "max_inside": 0}

    async def increment(s):
        async with s.lock("conv-a"):
            shared["inside"] += 1
            shared["max_inside"] = max(shared["max_inside"], shared["inside"])
            value = shared["value"]
            await asyncio.sleep(0.005)
            shared["value"] = value + 1
            shared["inside"] -= 1

    await asyncio.gather(*(increment(one if i % 2 else two) for i in range(40)))
    out["increments"] = shared["value"]
    out["max_inside"] = shared["max_inside"]
    out["released"] = one.holder("conv-a") is None

    # a slow message holds the lock three lease lifetimes; the next one waits on the other
    # instance and gets it when the first ends (its wait never expires)
    async def slow_then_next(s1, s2, **kw):
        order = []

        async def slow():
            async with s1.lock("conv-b", **kw):
                order.append("slow in")
                await asyncio.sleep(3.0)
                order.append("slow out")

        async def nxt():
            await asyncio.sleep(0.2)
            try:
                async with s2.lock("conv-b", **kw):
                    order.append("next in")
            except LockError:
                order.append("LockError")

        await asyncio.gather(slow(), nxt())
        return order

    out["slow_order"] = await slow_then_next(one, two)

    # Rasa's own Redis lock store, same case (tickets of 1 s)
    rasa_config = {k: v for k, v in config.items() if k not in ("type", "lease_seconds")}
    host = rasa_config.pop("url")
    rasa_config["key_prefix"] = prefix + "rasa"
    r1, r2 = RedisLockStore(host=host, **rasa_config), RedisLockStore(host=host, **rasa_config)
    out["rasa_slow_order"] = await slow_then_next(r1, r2, lock_lifetime=1)

    # a holder killed with SIGKILL: its lease expires after its lifetime, the next one goes on
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, json.dumps(config)],
        stdout=subprocess.PIPE, text=True,
    )
    out["child"] = child.stdout.readline().strip()
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    started = time.monotonic()
    async with one.lock("conv-c"):
        out["after_kill_s"] = round(time.monotonic() - started, 2)
    print(json.dumps(out))


HOLDER = '''
import asyncio, json, sys
from rasa.core.lock_store import LockStore
from rasa.utils.endpoints import EndpointConfig
store = LockStore.create(EndpointConfig.from_dict(json.loads(sys.argv[1])))
async def hold():
    async with store.lock("conv-c"):
        print("held", flush=True)
        await asyncio.sleep(60)
asyncio.run(hold())
'''

asyncio.run(main())
"""


def test_one_renewed_lease_per_conversation_across_instances() -> None:
    prefix = "t" + secrets.token_hex(4)
    result = run_in_rasa_env(CHECK, lock_store_config(REDIS_URL), prefix)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["class"] == "bot.runtime.lock_store.LeasedRedisLockStore"
    assert out["increments"] == 40 and out["max_inside"] == 1
    assert out["released"]
    # our lease: the next message waits behind the slow one, then runs
    assert out["slow_order"] == ["slow in", "slow out", "next in"]
    # Rasa's ticket lock: the waiting message's ticket expired while it waited; when the slow
    # one ends, nobody seems to wait, the lock is deleted, and the waiting one gets LockError
    assert out["rasa_slow_order"] == ["slow in", "slow out", "LockError"]
    # the killed holder's lease (1 s) expired, and not much later
    assert out["child"] == "held"
    assert out["after_kill_s"] < 3.0
