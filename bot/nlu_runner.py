"""NLU worker of the Rasa environment (.venv-rasa, Python 3.10) for `triage` and `eval`.

The gateway side (``webhook/nlu/triage.py``, ``webhook/nlu/evaluate.py``, Python 3.11) spawns
``.venv-rasa/bin/python -m bot.nlu_runner --model MODEL`` and talks to it in JSON lines:

* on start, once the model is loaded: ``{"ready": true, "load_seconds": float, "loader": str}``
* ``{"texts": ["...", ...]}`` → ``{"results": [PARSE, ...], "seconds": float}`` (one batch)
* ``{"examples": "DIR_OR_FILE"}`` → ``{"examples": [{"text", "intent", "entities"}, ...]}``
  (Rasa's own reader, so the held-out files are read exactly as ``rasa test`` reads them)

``PARSE`` = ``{"intent", "confidence", "ranking": [[name, confidence], ...], "entities": [...]}``.
``intent`` is the classifier's best intent; ``nlu_fallback`` (the FallbackClassifier's marker)
is skipped, and ``fallback`` says whether the fallback threshold was crossed.

Two loaders: ``nlu`` (default) builds only the part of the prediction graph that the NLU target
needs (no dialogue policies are loaded); ``agent`` uses ``rasa.core.agent.Agent.load`` (the whole
model, as the Rasa server does). Both run the same NLU nodes of the same model, so they give the
same parse; ``nlu`` starts faster.

Standard output carries the protocol only: anything Rasa or TensorFlow print goes to stderr.
Message texts are never logged.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

logger = logging.getLogger("tranquillite.nlu_runner")

FALLBACK_INTENT = "nlu_fallback"
RANKING_SIZE = 10


def _protocol_stream() -> IO[str]:
    """Keep the real stdout for the protocol; send everything else written to fd 1 to stderr."""
    proto = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return proto


class NluParser:
    """A loaded model that parses batches of texts."""

    def __init__(self, model: Path, loader: str = "nlu") -> None:
        self.loader = loader
        self._tmp = tempfile.TemporaryDirectory(prefix="tranq-nlu-")
        started = time.perf_counter()
        if loader == "agent":
            self._load_agent(model)
        elif loader == "nlu":
            self._load_nlu_graph(model)
        else:
            raise ValueError(f"unknown loader {loader!r}")
        # Warm-up: the first prediction builds TensorFlow's graph; part of start-up, not of a
        # message's parse time.
        self.parse(["bonjour"])
        self.load_seconds = time.perf_counter() - started

    def _load_nlu_graph(self, model: Path) -> None:
        from rasa.engine.graph import ExecutionContext
        from rasa.engine.runner.dask import DaskGraphRunner
        from rasa.engine.storage.local_model_storage import LocalModelStorage

        storage, metadata = LocalModelStorage.from_model_archive(Path(self._tmp.name), model)
        schema = metadata.predict_schema.minimal_graph_schema([metadata.nlu_target])
        self._target = metadata.nlu_target
        self._runner = DaskGraphRunner.create(
            graph_schema=schema,
            model_storage=storage,
            execution_context=ExecutionContext(graph_schema=schema, model_id=metadata.model_id),
        )

    def _load_agent(self, model: Path) -> None:
        from rasa.core.agent import Agent

        agent = Agent.load(str(model))
        processor = agent.processor
        assert processor is not None
        self._target = processor.model_metadata.nlu_target
        self._runner = processor.graph_runner

    def parse(self, texts: list[str]) -> list[dict[str, Any]]:
        from rasa.core.channels.channel import UserMessage
        from rasa.engine.constants import PLACEHOLDER_MESSAGE, PLACEHOLDER_TRACKER
        from rasa.shared.core.trackers import DialogueStateTracker

        if not texts:
            return []
        messages = [UserMessage(text=t, sender_id=f"triage-{i}") for i, t in enumerate(texts)]
        tracker = DialogueStateTracker.from_events("triage", [])
        results = self._runner.run(
            inputs={PLACEHOLDER_MESSAGE: messages, PLACEHOLDER_TRACKER: tracker},
            targets=[self._target],
        )
        return [_summary(m.as_dict(only_output_properties=True)) for m in results[self._target]]

    def close(self) -> None:
        self._tmp.cleanup()


def _summary(parsed: dict[str, Any]) -> dict[str, Any]:
    ranking = [
        (str(item.get("name")), float(item.get("confidence") or 0.0))
        for item in parsed.get("intent_ranking") or []
        if item.get("name") != FALLBACK_INTENT
    ]
    top = parsed.get("intent") or {}
    fallback = top.get("name") == FALLBACK_INTENT
    if not ranking and top.get("name") and not fallback:
        ranking = [(str(top["name"]), float(top.get("confidence") or 0.0))]
    intent, confidence = ranking[0] if ranking else (None, 0.0)
    entities = [
        {
            key: entity.get(key)
            for key in ("entity", "start", "end", "value", "role", "extractor")
            if entity.get(key) is not None
        }
        for entity in parsed.get("entities") or []
    ]
    return {
        "intent": intent,
        "confidence": confidence,
        "fallback": fallback,
        "ranking": [[name, conf] for name, conf in ranking[:RANKING_SIZE]],
        "entities": entities,
    }


def load_examples(path: str) -> list[dict[str, Any]]:
    """Intent examples of a Rasa NLU file or directory, with their annotated entities."""
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(path)
    examples = []
    for message in data.intent_examples:
        entities = [
            {
                key: entity.get(key)
                for key in ("entity", "start", "end", "value", "role")
                if entity.get(key) is not None
            }
            for entity in message.get("entities") or []
        ]
        examples.append(
            {"text": message.get("text"), "intent": message.get("intent"), "entities": entities}
        )
    return examples


def serve(parser: NluParser, requests: IO[str], out: IO[str]) -> None:
    for line in requests:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            if "texts" in request:
                texts = [str(t) for t in request["texts"]]
                started = time.perf_counter()
                results = parser.parse(texts)
                reply: dict[str, Any] = {
                    "results": results,
                    "seconds": time.perf_counter() - started,
                }
            elif "examples" in request:
                reply = {"examples": load_examples(str(request["examples"]))}
            else:
                reply = {"error": "unknown request"}
        except Exception as exc:  # noqa: BLE001 - one bad request must not stop the worker
            logger.error("request failed: %s", type(exc).__name__)
            reply = {"error": type(exc).__name__}
        out.write(json.dumps(reply, ensure_ascii=False) + "\n")
        out.flush()


def main(argv: list[str] | None = None) -> int:
    args_parser = argparse.ArgumentParser(prog="python -m bot.nlu_runner")
    args_parser.add_argument("--model", required=True, help="trained model archive (.tar.gz)")
    args_parser.add_argument("--loader", choices=("nlu", "agent"), default="nlu")
    args = args_parser.parse_args(argv)
    proto = _protocol_stream()
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("rasa", "tensorflow", "absl", "spacy"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    parser = NluParser(Path(args.model), args.loader)
    try:
        proto.write(
            json.dumps(
                {"ready": True, "load_seconds": parser.load_seconds, "loader": parser.loader}
            )
            + "\n"
        )
        proto.flush()
        serve(parser, sys.stdin, proto)
    finally:
        parser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
