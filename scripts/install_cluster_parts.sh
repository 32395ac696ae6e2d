#!/usr/bin/env bash
# Installs Debian's HAProxy, the load balancer of the local cluster (`tranquillite cluster`, the
# failover test in tests/cluster/, `tranquillite bench-cluster`). PostgreSQL and Redis are the
# servers already used by the tests (127.0.0.1:5432, 127.0.0.1:6379). Idempotent: does nothing
# when haproxy is present. The launcher runs it as an ordinary process (no service is enabled).
set -euo pipefail

HAPROXY="${TQ_HAPROXY:-/usr/sbin/haproxy}"

if [ -x "$HAPROXY" ]; then
    echo "install_cluster_parts: $HAPROXY already present ($("$HAPROXY" -v 2>/dev/null | sed -n 1p || echo 'version unknown'))"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends haproxy

if [ ! -x "$HAPROXY" ]; then
    echo "install_cluster_parts: haproxy installed but $HAPROXY not found" >&2
    exit 1
fi
# Debian's package starts a system service with its own default configuration: the launcher
# never uses it, stop it when a service manager is there (harmless otherwise).
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now haproxy >/dev/null 2>&1 || true
fi
echo "install_cluster_parts: installed $("$HAPROXY" -v 2>/dev/null | sed -n 1p || echo haproxy)"
