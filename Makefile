# The two commands of the README: `make run` and `make test` (import contracts, then pytest).
.PHONY: run test setup lint bootstrap

bootstrap:
	@scripts/bootstrap.sh

setup: bootstrap
	@.venv/bin/tranquillite setup

run: setup
	@.venv/bin/tranquillite run

test: setup
	@scripts/install_browser.sh
	@scripts/install_cluster_parts.sh
	@.venv/bin/lint-imports
	@.venv/bin/python -m pytest

lint: bootstrap
	@.venv/bin/ruff check .
	@.venv/bin/mypy
	@.venv/bin/lint-imports
