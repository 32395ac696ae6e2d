"""The cluster's generated configuration: HAProxy's (checked by the real haproxy -c), Rasa's
lock store, and the documented production copies in deploy/."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from webhook.config import PROJECT_ROOT
from webhook.ops.cluster import HAPROXY, haproxy_config
from webhook.ops.supervisor import LOCK_STORE_CLASS, lock_store_config

DEPLOY = PROJECT_ROOT / "deploy"


def haproxy_check(path: Path) -> subprocess.CompletedProcess[str]:
    assert Path(HAPROXY).is_file(), "run scripts/install_cluster_parts.sh (make test does)"
    return subprocess.run(
        [HAPROXY, "-c", "-f", str(path)], capture_output=True, text=True, timeout=30
    )


def test_generated_haproxy_config_is_valid(tmp_path: Path) -> None:
    config = haproxy_config(
        "127.0.0.1",
        18080,
        18081,
        [("gateway-1", "127.0.0.1", 18091), ("gateway-2", "127.0.0.1", 18092)],
    )
    path = tmp_path / "haproxy.cfg"
    path.write_text(config)
    result = haproxy_check(path)
    assert result.returncode == 0, result.stderr
    assert "option httpchk GET /health" in config
    assert "server gateway-2 127.0.0.1:18092 check" in config
    # a message that reached a gateway is never replayed by the load balancer
    assert "retry-on conn-failure" in config
    assert "retry-on all" not in config


def test_a_broken_haproxy_config_is_refused(tmp_path: Path) -> None:
    """The check above can fail: haproxy -c refuses a wrong configuration."""
    path = tmp_path / "haproxy.cfg"
    path.write_text(
        haproxy_config("127.0.0.1", 18080, 18081, []).replace(
            "balance roundrobin", "balance nowhere"
        )
    )
    assert haproxy_check(path).returncode != 0


def test_production_haproxy_config_is_valid() -> None:
    result = haproxy_check(DEPLOY / "haproxy.cfg")
    assert result.returncode == 0, result.stderr


def test_lock_store_config_reads_a_redis_url() -> None:
    config = yaml.safe_load(lock_store_config("redis://:s3cret@redis.internal:6380/1"))
    assert config["lock_store"] == {
        "type": LOCK_STORE_CLASS,
        "url": "redis.internal",
        "port": 6380,
        "db": 1,
        "key_prefix": "tranquillite",
        "password": "s3cret",
    }
    assert yaml.safe_load(lock_store_config("redis://127.0.0.1"))["lock_store"]["port"] == 6379
    with pytest.raises(ValueError):
        lock_store_config("http://127.0.0.1:6379")


def test_compose_layout_is_consistent() -> None:
    """deploy/compose.yml: every name a service refers to exists, every long-running service
    reserves resources, and the load balancer's servers are the gateways."""
    compose = yaml.safe_load((DEPLOY / "compose.yml").read_text())
    services = compose["services"]
    gateways = sorted(n for n in services if n.startswith("gateway-"))
    rasas = sorted(n for n in services if n.startswith("rasa-"))
    assert len(gateways) >= 2 and len(rasas) >= 2
    for name in gateways:
        env = services[name]["environment"]
        urls = env["TRANQUILLITE_RASA_URLS"].split(",")
        assert sorted(u.split("//")[1].split(":")[0] for u in urls) == rasas
        assert env["TRANQUILLITE_OUTBOX_WORKER"] == "off"
        assert env["TRANQUILLITE_AUTO_MIGRATE"] == "0"
        assert (
            env["TRANQUILLITE_TRUSTED_PROXIES"]
            == (services["haproxy"]["networks"]["tranquillite"]["ipv4_address"])
        )
    actions = set()
    for name in rasas:
        url = services[name]["environment"]["ACTION_SERVER_URL"]
        actions.add(url.split("//")[1].split(":")[0])
        assert "TRACKER_STORE_URL" in services[name]["environment"]
    assert actions == {n for n in services if n.startswith("actions-")}
    assert len(actions) == len(rasas)  # one action server per Rasa instance
    for name in actions:
        assert services[name]["environment"]["TRANQUILLITE_GATEWAY_URL"] == "http://haproxy:80"
    assert services["migrate"]["command"] == ["tranquillite", "db-upgrade"]
    for name, service in services.items():
        if name != "migrate":
            assert service["deploy"]["resources"]["reservations"]["memory"], name
    haproxy = (DEPLOY / "haproxy.cfg").read_text()
    servers = sorted(
        line.split()[1] for line in haproxy.splitlines() if line.strip().startswith("server ")
    )
    assert servers == gateways
    endpoints = yaml.safe_load((DEPLOY / "rasa" / "endpoints.yml").read_text())
    assert endpoints["lock_store"]["type"] == LOCK_STORE_CLASS  # as the launcher writes it
    assert endpoints["tracker_store"]["dialect"] == "postgresql"
