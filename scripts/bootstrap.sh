#!/usr/bin/env bash
# Creates or updates the gateway environment (.venv, Python 3.11) with the pinned dependencies and
# the `tranquillite` command. Idempotent: does nothing when the pins have not changed.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python311() {
  local candidates=()
  [ -n "${PYTHON311:-}" ] && candidates+=("$PYTHON311")
  command -v python3.11 >/dev/null 2>&1 && candidates+=("$(command -v python3.11)")
  local root="${PYENV_ROOT:-$HOME/.pyenv}"
  for d in $(ls -d "$root"/versions/3.11.* 2>/dev/null | sort -rV); do candidates+=("$d/bin/python"); done
  command -v python3 >/dev/null 2>&1 && candidates+=("$(command -v python3)")
  for c in "${candidates[@]}"; do
    if [ "$("$c" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "3.11" ]; then
      echo "$c"; return 0
    fi
  done
  echo "error: Python 3.11 not found (set \$PYTHON311, put python3.11 on PATH, or pyenv install 3.11)" >&2
  return 1
}

mkdir -p var/log
stamp_value=$(cat pyproject.toml requirements/gateway-constraints.txt | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/tranquillite ] && [ "$(cat .venv/.tranquillite-stamp 2>/dev/null)" = "$stamp_value" ]; then
  exit 0
fi
echo "Installing the gateway environment (.venv)..." >&2
if [ ! -x .venv/bin/python ]; then
  "$(find_python311)" -m venv .venv
fi
{
  .venv/bin/python -m pip install --quiet "pip==25.3"
  .venv/bin/python -m pip install --quiet -c requirements/gateway-constraints.txt -e ".[dev]"
} >> var/log/bootstrap.log 2>&1 || { echo "error: pip install failed, see var/log/bootstrap.log" >&2; tail -20 var/log/bootstrap.log >&2; exit 1; }
echo "$stamp_value" > .venv/.tranquillite-stamp
echo "Gateway environment ready." >&2
