"""The cluster's generated configuration: HAProxy's (checked by the real haproxy -c), Rasa's
lock store, and the documented production copies in deploy/."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from webhook.config import PROJECT_ROOT
from webhook.ops.cluster import HAPROXY, haproxy_config
from webhook.ops.supervisor import lock_store_config

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
        "type": "redis",
        "url": "redis.internal",
        "port": 6380,
        "db": 1,
        "key_prefix": "tranquillite",
        "password": "s3cret",
    }
    assert yaml.safe_load(lock_store_config("redis://127.0.0.1"))["lock_store"]["port"] == 6379
    with pytest.raises(ValueError):
        lock_store_config("http://127.0.0.1:6379")
