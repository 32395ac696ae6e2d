"""`tranquillite triage` (SPEC §8): JSON lines in, one JSON line out per input line.

Input: ``{"id": ..., "text": "...", "commune": "<name, postal code or INSEE code>"?}``.
Output: ``{"id", "language", "report_type", "confidence", "immediate_danger", "minor_involved",
"senior_involved", "commune_insee", "destinations": [{"agency_id", "role", "rule_id"}],
"referrals": [...], "alternatives": [{"report_type", "confidence"}, ...]}``; a bad line gives
``{"id": <id or null>, "error": "..."}``.

The trained Rasa model runs in the Rasa environment: this module spawns
``.venv-rasa/bin/python -m bot.nlu_runner`` once (:class:`NluWorker`) and sends it batches of
the lines already available on stdin (streaming: an interactive caller gets each answer as soon
as its line is read; a file is processed in batches). Everything else — language, safety,
commune, flags, routing — is computed here with the same packages as the chat (``routing``,
``safety``).

Decisions:

* ``language``: langdetect (seed 0) only for texts of at least ``MIN_LANG_LETTERS`` letters and a
  probability of at least ``MIN_LANG_PROBABILITY``; otherwise "fr".
* ``report_type``: the classifier's best intent if it is a report type (SPEC §2), else
  "hors_sujet"; ``confidence`` is that intent's confidence (the FallbackClassifier's
  ``nlu_fallback`` marker is skipped: consumers apply their own threshold).
* ``immediate_danger``: the safety layer (rules + danger model), the very decision the chat takes
  on every turn (SPEC §8: the same model and rules as the chat).
* ``referrals``: when in danger, the safety layer's helplines first (emergency lines first),
  then the routing decision's referral ids; otherwise the routing decision's referral ids.
* flags for ``routing.decide`` come from the safety categories, the model's entities
  (``victime``, ``age``, ``url``) and the report model (``reports``: the answers the message
  already gives and the cues of ``reports/cues.yml``), as for a report filed in the chat.

Message texts are never logged.
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import reports
import routing
from reports import communes
from routing.normalize import fold
from safety import DangerAssessment, assess, helplines_for
from webhook.config import PROJECT_ROOT
from webhook.ops import envsetup

logger = logging.getLogger(__name__)

NON_REPORT = "hors_sujet"
MIN_LANG_LETTERS = 20
MIN_LANG_PROBABILITY = 0.90
MAX_TEXT_CHARS = 5000
BATCH_SIZE = 32
# The classifier was trained on French and English. A message in another language gets its guess
# with at most this confidence (below the chat's fallback threshold, 0.45): never a confident
# French report type for a language the model does not read (the chat sends such messages to the
# guided mode in their language).
TRAINED_LANGUAGES = frozenset({"fr", "en"})
OTHER_LANGUAGE_CONFIDENCE = 0.3
OUTPUT_KEYS = (
    "id",
    "language",
    "report_type",
    "confidence",
    "immediate_danger",
    "minor_involved",
    "senior_involved",
    "commune_insee",
    "destinations",
    "referrals",
    "alternatives",
)
ALTERNATIVES = 2


class TriageError(Exception):
    """The NLU worker could not be started or stopped answering."""


# --------------------------------------------------------------------------- NLU worker


class NluWorker:
    """The Rasa-side process (``bot.nlu_runner``) holding the loaded model."""

    def __init__(self, model: Path, loader: str = "nlu", log_file: Path | None = None) -> None:
        self.model = model
        log_path = log_file or PROJECT_ROOT / "var" / "log" / "nlu_runner.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        started = time.perf_counter()
        with log_path.open("a") as log:
            self._process = subprocess.Popen(
                [
                    str(envsetup.rasa_bin("python")),
                    "-m",
                    "bot.nlu_runner",
                    "--model",
                    str(model),
                    "--loader",
                    loader,
                ],
                cwd=PROJECT_ROOT,
                env=envsetup.rasa_env(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                encoding="utf-8",
                bufsize=1,
            )
        # while the Rasa-side process loads the model (about 13 s), load what the first answer
        # needs on this side (language profiles, danger model, lexicon, routing and communes:
        # about a second, issue 17) on the other core
        _warm_up()
        ready = self._read()
        if not ready.get("ready"):
            self.close()
            raise TriageError(f"the NLU worker did not start; see {log_path}")
        self.start_seconds = time.perf_counter() - started
        self.load_seconds = float(ready.get("load_seconds", 0.0))
        self.loader = str(ready.get("loader", loader))

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise TriageError(f"the NLU worker stopped; see {self.log_path}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def _ask(self, request: Mapping[str, Any]) -> dict[str, Any]:
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(json.dumps(request, ensure_ascii=False) + "\n")
            self._process.stdin.flush()
        except BrokenPipeError as exc:
            raise TriageError(f"the NLU worker stopped; see {self.log_path}") from exc
        reply = self._read()
        if "error" in reply:
            raise TriageError(f"the NLU worker failed ({reply['error']}); see {self.log_path}")
        return reply

    def parse(self, texts: list[str]) -> tuple[list[dict[str, Any]], float]:
        """Parse a batch; returns the parses and the worker's parse time in seconds."""
        if not texts:
            return [], 0.0
        reply = self._ask({"texts": texts})
        results: list[dict[str, Any]] = reply["results"]
        if len(results) != len(texts):
            raise TriageError("the NLU worker returned a wrong number of results")
        return results, float(reply["seconds"])

    def examples(self, path: Path) -> list[dict[str, Any]]:
        """Intent examples (text, intent, annotated entities) read by Rasa's own reader."""
        examples: list[dict[str, Any]] = self._ask({"examples": str(path)})["examples"]
        return examples

    def close(self) -> None:
        if self._process.poll() is None:
            assert self._process.stdin is not None
            try:
                self._process.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()

    def __enter__(self) -> NluWorker:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- flags


def _entity_values(entities: Iterable[Mapping[str, Any]], name: str) -> list[str]:
    return [str(e.get("value")) for e in entities if e.get("entity") == name and e.get("value")]


@dataclass(frozen=True)
class Flags:
    minor: bool
    senior: bool
    offence: bool
    online: bool
    neighbour_conflict: bool
    money_lost: bool
    repeated: bool


def derive_flags(
    text: str,
    report_type: str,
    entities: list[Mapping[str, Any]],
    safety: DangerAssessment,
    danger: bool = False,
) -> Flags:
    """The routing flags of a message, as the chat would file it: the message is the report's
    description, the answers it already gives are read from it (reports.extract) and the flags
    come from the report model (reports.flags); the model's entities and the safety categories
    add who is involved (a child, an elderly person) and web addresses."""
    if report_type in routing.REPORT_TYPES:
        answers: dict[str, Any] = {"description": text}
        answers.update(reports.extract(report_type, text, reports.today()))
        if danger:
            answers[reports.DANGER_SIGNAL] = "oui"
        computed = reports.flags(report_type, answers)
    else:
        computed = {name: False for name in routing.FLAGS}
        computed.update(reports.text_flags(text))
    ages = []
    for value in _entity_values(entities, "age"):
        digits = re.search(r"\d{1,3}", value)
        if digits:
            ages.append(int(digits.group()))
    cues = reports.flags_cues()
    victims = {fold(v) for v in _entity_values(entities, "victime")}
    return Flags(
        minor=computed["minor"]
        or "child_danger_now" in safety.categories
        or "enfant" in victims
        or any(age < cues.minor_below for age in ages),
        senior=computed["senior"]
        or "elder_danger_now" in safety.categories
        or "senior" in victims
        or any(age >= cues.senior_from for age in ages),
        offence=computed["offence"],
        online=computed["online"] or bool(_entity_values(entities, "url")),
        neighbour_conflict=computed["neighbour_conflict"],
        money_lost=computed["money_lost"],
        repeated=computed["repeated"],
    )


# --------------------------------------------------------------------------- language, commune


def detect_language(text: str) -> str:
    """ISO 639-1 code; "fr" for short texts or when langdetect is not sure."""
    from langdetect import DetectorFactory, detect_langs
    from langdetect.lang_detect_exception import LangDetectException

    letters = sum(ch.isalpha() for ch in text)
    if letters < MIN_LANG_LETTERS:
        return "fr"
    DetectorFactory.seed = 0
    try:
        best = detect_langs(text)[0]
    except LangDetectException:
        return "fr"
    if best.prob < MIN_LANG_PROBABILITY:
        return "fr"
    return str(best.lang).split("-")[0]


def resolve_commune(field: str | None, entities: list[Mapping[str, Any]]) -> str | None:
    """INSEE code from the ``commune`` field, else from a commune named in the text.

    A field shared by several communes (homonyms, a postal code of several communes) is narrowed
    by a commune named in the text; if it stays ambiguous the result is ``None`` (the national
    fallback: no agency is guessed) — the commune policy of every channel (reports.communes).
    """
    named = [communes.resolve(v[:200]) for v in _entity_values(entities, "commune")]
    if field:
        answer = communes.narrow(communes.resolve(field[:200]), named)
        if answer.communes:
            return answer.found.insee if answer.found else None
    for candidates in named:
        if candidates.found:
            return candidates.found.insee
    return None


# --------------------------------------------------------------------------- one message


def _warm_up() -> None:
    """One answer on a made-up parse: loads every lazy resource :func:`triage_one` uses."""
    triage_one(
        "warm-up",
        "Mon voisin met la musique très fort toutes les nuits à Dole",
        "39198",
        {"intent": "incivilite", "confidence": 0.9, "ranking": [["incivilite", 0.9]]},
    )


def triage_one(
    item_id: Any, text: str, commune: str | None, parse: Mapping[str, Any]
) -> dict[str, Any]:
    """The SPEC §8 answer for one message, given the model's parse of its text."""
    language = detect_language(text)
    intent = parse.get("intent")
    confidence = float(parse.get("confidence") or 0.0)
    if language not in TRAINED_LANGUAGES:
        confidence = min(confidence, OTHER_LANGUAGE_CONFIDENCE)
        parse = {
            **parse,
            "ranking": [
                [name, min(float(c), OTHER_LANGUAGE_CONFIDENCE)]
                for name, c in parse.get("ranking") or []
            ],
        }
    report_type = intent if intent in routing.REPORT_TYPES else NON_REPORT
    entities: list[Mapping[str, Any]] = list(parse.get("entities") or [])
    safety = assess(text, language)
    danger = safety.immediate_danger
    flags = derive_flags(text, report_type, entities, safety, danger=danger)
    insee = resolve_commune(commune, entities)
    destinations: list[dict[str, str]] = []
    referrals: list[str] = list(safety.helplines) if danger else []
    if danger and not referrals:
        referrals = list(helplines_for("help_call"))
    if report_type != NON_REPORT:
        decision = routing.get_engine().decide(
            report_type,
            insee,
            minor=flags.minor,
            senior=flags.senior,
            danger=danger,
            offence=flags.offence,
            online=flags.online,
            neighbour_conflict=flags.neighbour_conflict,
            money_lost=flags.money_lost,
            repeated=flags.repeated,
        )
        destinations = [
            {"agency_id": d.agency_id, "role": d.role, "rule_id": d.rule_id}
            for d in decision.destinations
        ]
        referrals.extend(r for r in decision.referrals if r not in referrals)
    return {
        "id": item_id,
        "language": language,
        "report_type": report_type,
        "confidence": round(confidence, 4),
        "immediate_danger": danger,
        "minor_involved": flags.minor,
        "senior_involved": flags.senior,
        "commune_insee": insee,
        "destinations": destinations,
        "referrals": referrals,
        "alternatives": alternatives(parse, report_type),
    }


def alternatives(parse: Mapping[str, Any], chosen: str) -> list[dict[str, Any]]:
    """The next ``ALTERNATIVES`` likeliest report types (SPEC §8) after ``chosen``, from the
    classifier's ranking; non-report intents count as "hors_sujet" (once, at its best rank)."""
    result: list[dict[str, Any]] = []
    seen = {chosen}
    for name, confidence in parse.get("ranking") or []:
        report_type = name if name in routing.REPORT_TYPES else NON_REPORT
        if name == "nlu_fallback" or report_type in seen:
            continue
        seen.add(report_type)
        result.append({"report_type": report_type, "confidence": round(float(confidence), 4)})
        if len(result) == ALTERNATIVES:
            break
    return result


@dataclass(frozen=True)
class _Item:
    id: Any
    text: str | None
    commune: str | None
    error: str | None


def read_item(line: str) -> _Item:
    """Validate one input line (never raises)."""
    try:
        data = json.loads(line)
    except ValueError:
        return _Item(None, None, None, "invalid JSON")
    if not isinstance(data, dict):
        return _Item(None, None, None, "a JSON object is expected")
    item_id = data.get("id")
    if item_id is None or isinstance(item_id, (dict, list, bool)) or item_id == "":
        return _Item(None, None, None, "missing or invalid id")
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        return _Item(item_id, None, None, "missing or empty text")
    commune = data.get("commune")
    if commune is not None and not isinstance(commune, (str, int)):
        return _Item(item_id, None, None, "commune must be a string")
    return _Item(
        item_id, text[:MAX_TEXT_CHARS], str(commune) if commune is not None else None, None
    )


def triage_batch(lines: list[str], worker: NluWorker) -> list[dict[str, Any]]:
    """Answers for consecutive input lines, in order (one model call for the whole batch)."""
    items = [read_item(line) for line in lines]
    texts = [item.text for item in items if item.error is None and item.text is not None]
    parses = iter(worker.parse(texts)[0])
    answers: list[dict[str, Any]] = []
    for item in items:
        if item.error is not None or item.text is None:
            answers.append({"id": item.id, "error": item.error})
            continue
        parse = next(parses)
        try:
            answers.append(triage_one(item.id, item.text, item.commune, parse))
        except (routing.RoutingError, ValueError) as exc:
            logger.error("triage failed for one line: %s", type(exc).__name__)
            answers.append({"id": item.id, "error": f"internal error ({type(exc).__name__})"})
    return answers


# --------------------------------------------------------------------------- streaming


_EOF = object()


def _batches(stream: IO[str], size: int) -> Iterator[list[str]]:
    """Non-blank lines, grouped by what is already available (never waits to fill a batch)."""
    pending: queue.Queue[object] = queue.Queue(maxsize=size * 4)

    def reader() -> None:
        try:
            for line in stream:
                if line.strip():
                    pending.put(line)
        finally:
            pending.put(_EOF)

    threading.Thread(target=reader, name="triage-stdin", daemon=True).start()
    while True:
        first = pending.get()
        if first is _EOF:
            return
        batch = [str(first)]
        done = False
        while len(batch) < size:
            try:
                nxt = pending.get_nowait()
            except queue.Empty:
                break
            if nxt is _EOF:
                done = True
                break
            batch.append(str(nxt))
        yield batch
        if done:
            return


def run(
    stream_in: IO[str], stream_out: IO[str], worker: NluWorker, batch_size: int = BATCH_SIZE
) -> int:
    """Triage every line of ``stream_in``; returns the number of lines answered."""
    routing.get_engine()
    reports.model()
    reports.flags_cues()
    count = 0
    for batch in _batches(stream_in, batch_size):
        for answer in triage_batch(batch, worker):
            stream_out.write(json.dumps(answer, ensure_ascii=False) + "\n")
            count += 1
        stream_out.flush()
    return count


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tranquillite triage``: JSON lines on stdin → JSON lines on stdout."""
    parser = argparse.ArgumentParser(
        prog="tranquillite triage",
        description="Triage JSON lines {id, text, commune?} from stdin to stdout (SPEC §8).",
    )
    parser.add_argument("--model", type=Path, help="model archive (default: the trained model)")
    parser.add_argument(
        "--loader",
        choices=("nlu", "agent"),
        default="nlu",
        help="nlu: only the NLU part of the model (faster start); agent: Rasa's Agent.load",
    )
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        path = args.model or envsetup.ensure_model()
        with NluWorker(path, loader=args.loader) as worker:
            print(
                f"triage: model ready in {worker.start_seconds:.1f} s ({worker.loader} loader)",
                file=sys.stderr,
                flush=True,
            )
            count = run(sys.stdin, sys.stdout, worker, max(1, args.batch_size))
    except (envsetup.SetupError, TriageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"triage: {count} line(s) in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
        flush=True,
    )
    return 0
