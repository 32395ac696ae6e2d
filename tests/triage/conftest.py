"""Fixtures of the triage/eval tests: the real `tranquillite triage` process on the real model."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from webhook.config import PROJECT_ROOT

ANSWER_TIMEOUT = 120.0
STARTUP_TIMEOUT = 900.0  # model load; minutes on a loaded 2-core machine


class TriageProcess:
    """`python -m webhook.cli triage` with pipes; answers are read with a timeout."""

    def __init__(self, model: Path) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "webhook.cli", "triage", "--model", str(model)],
            cwd=PROJECT_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        self.ready = threading.Event()
        self._threads = [
            threading.Thread(target=self._pump, args=(self.popen.stdout,), daemon=True),
            threading.Thread(target=self._drain, args=(self.popen.stderr,), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def _drain(self, stream: IO[str]) -> None:
        for line in stream:
            self.stderr.append(line)
            if line.startswith("triage: model ready"):
                self.ready.set()
        self.ready.set()  # stopped: the next read reports it

    def send(self, *lines: str) -> None:
        assert self.popen.stdin is not None
        for line in lines:
            self.popen.stdin.write(line + "\n")
        self.popen.stdin.flush()

    def read(self, count: int) -> list[dict[str, Any]]:
        answers = []
        for _ in range(count):
            try:
                line = self._lines.get(timeout=ANSWER_TIMEOUT)
            except queue.Empty:
                pytest.fail(f"no triage answer within {ANSWER_TIMEOUT} s; stderr: {self.stderr}")
            if line is None:
                pytest.fail(f"triage stopped; stderr: {''.join(self.stderr)}")
            answers.append(json.loads(line))
        return answers

    def ask(self, *items: dict[str, Any] | str) -> list[dict[str, Any]]:
        lines = [i if isinstance(i, str) else json.dumps(i, ensure_ascii=False) for i in items]
        self.send(*lines)
        return self.read(len([line for line in lines if line.strip()]))

    def close(self) -> int:
        assert self.popen.stdin is not None
        self.popen.stdin.close()
        try:
            return self.popen.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            raise
        finally:
            for thread in self._threads:
                thread.join(timeout=10)
            for stream in (self.popen.stdout, self.popen.stderr):
                if stream is not None:
                    stream.close()


@pytest.fixture(scope="session")
def triage(trained_model: Path) -> Iterator[TriageProcess]:
    process = TriageProcess(trained_model)
    try:
        if not process.ready.wait(STARTUP_TIMEOUT):
            pytest.fail(f"triage did not load the model within {STARTUP_TIMEOUT} s")
        yield process
    finally:
        process.close()
