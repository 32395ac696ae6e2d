# The two commands of the README: `make run` and `make test` (import contracts, then pytest).
.PHONY: run test test-fast setup lint bootstrap

bootstrap:
	@scripts/bootstrap.sh

setup: bootstrap
	@.venv/bin/tranquillite setup

run: setup
	@.venv/bin/tranquillite run

# Two workers on the two cores (pytest-xdist), a test file whole in one worker (its module fixtures
# start once; each worker that runs a test of the session's Rasa stack starts its own).
# PYTEST_WORKERS= runs everything in one process.
PYTEST_WORKERS ?= -n 2 --dist loadfile

test: setup
	@scripts/install_browser.sh
	@scripts/install_cluster_parts.sh
	@.venv/bin/lint-imports
	@.venv/bin/python -m pytest $(PYTEST_WORKERS)

# The fast tests alone (issue 17): no Rasa stack, no browser, none of tests/slow_tests.txt.
test-fast: setup
	@.venv/bin/lint-imports
	@.venv/bin/python -m pytest $(PYTEST_WORKERS) -m "not e2e and not browser and not slow"

lint: bootstrap
	@.venv/bin/ruff check .
	@.venv/bin/mypy
	@.venv/bin/lint-imports
