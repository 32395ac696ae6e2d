"""Custom actions of the Rasa action server (runs in .venv-rasa, Python 3.10).

The action server validates the forms and files reports. It never touches the ticket store: it
calls the gateway's internal API (the single writer) and imports only the pure ``routing`` package
to resolve communes.
"""

from __future__ import annotations

import abc
import json
import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

import routing

logger = logging.getLogger(__name__)

REPORT_TYPES = frozenset(routing.REPORT_TYPES)
# Load the reference data when the action server starts, not on the first citizen's message;
# a broken data file stops the server at start-up with a clear error.
routing.get_engine()
INSEE_PAYLOAD_PREFIX = "insee:"
MAX_FIELD_CHARS = 2000
# Slots that describe a report; reset together after filing or cancelling.
REPORT_SLOTS = (
    "report_type",
    "description",
    "lieu",
    "frequence",
    "commune",
    "commune_insee",
    "commune_name",
)


@lru_cache(maxsize=1)
def texts() -> dict[str, Any]:
    with (Path(__file__).parent / "report_texts.yml").open(encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.safe_load(fh)
    return data


def gateway_url() -> str:
    return os.environ.get("TRANQUILLITE_GATEWAY_URL", "http://127.0.0.1:8080").rstrip("/")


def internal_token() -> str:
    return os.environ.get("TRANQUILLITE_INTERNAL_TOKEN", "")


def _clean(text: str | None) -> str:
    return (text or "").strip()[:MAX_FIELD_CHARS]


def _is_payload(text: str) -> bool:
    return text.startswith("/")


class _ReportFormValidation(FormValidationAction, metaclass=abc.ABCMeta):
    """Shared validation: description from the first message, commune resolved by routing."""

    fixed_report_type: str | None = None

    @abc.abstractmethod
    def name(self) -> str:
        """Name of the validation action: validate_<form name>."""

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        events = await super().run(dispatcher, tracker, domain)
        if not tracker.get_slot("report_type"):
            report_type = self.fixed_report_type or tracker.latest_message.get("intent", {}).get(
                "name"
            )
            if report_type in REPORT_TYPES:
                events.append(SlotSet("report_type", report_type))
        return events

    async def extract_description(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """The first free-text message of a report is its description: ask only if missing."""
        if tracker.get_slot("description"):
            return {}
        text = _clean(tracker.latest_message.get("text"))
        if not text or _is_payload(text):
            return {}
        requested = tracker.get_slot("requested_slot")
        intent = tracker.latest_message.get("intent", {}).get("name")
        if requested == "description" or (requested is None and intent in REPORT_TYPES):
            return {"description": text}
        return {}

    def validate_description(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = _clean(value if isinstance(value, str) else None)
        if len(text) < 3:
            return {"description": None}
        return {"description": text}

    def validate_commune(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if isinstance(value, list):  # several entities in one message: take the first
            value = value[0] if value else None
        query = _clean(value if isinstance(value, str) else None)
        if _is_payload(query):  # a button of another question, not a commune
            return {"commune": None, "commune_insee": None, "commune_name": None}
        if tracker.get_slot("requested_slot") not in (None, "commune"):
            # A place name spotted while answering another question ("avenue de Verdun") is not
            # the commune of the report: the commune is asked when its turn comes.
            return {"commune": None, "commune_insee": None, "commune_name": None}
        try:
            return self._resolve_commune(query, dispatcher)
        except routing.RoutingError as exc:
            logger.error("commune resolution failed: %s", type(exc).__name__)
            dispatcher.utter_message(response="utter_commune_not_found", commune=query[:80])
            return {"commune": None, "commune_insee": None, "commune_name": None}

    @staticmethod
    def _resolve_commune(query: str, dispatcher: CollectingDispatcher) -> dict[str, Any]:
        engine = routing.get_engine()
        if query.startswith(INSEE_PAYLOAD_PREFIX):
            commune = engine.commune(query[len(INSEE_PAYLOAD_PREFIX) :])
            candidates = [commune] if commune else []
        else:
            result = engine.resolve_commune(query) if query else None
            candidates = list(result.candidates) if result else []
        if len(candidates) == 1:
            commune = candidates[0]
            return {
                "commune": commune.name,
                "commune_insee": commune.insee,
                "commune_name": f"{commune.name} ({commune.departement})",
            }
        if candidates:
            buttons = [
                {
                    "title": f"{c.name} ({c.departement}"
                    + (f", {c.postal_codes[0]}" if c.postal_codes else "")
                    + ")",
                    "payload": "/choisir_commune"
                    + json.dumps({"commune_insee": INSEE_PAYLOAD_PREFIX + c.insee}),
                }
                for c in candidates[:10]
            ]
            dispatcher.utter_message(response="utter_commune_ambiguous", buttons=buttons)
        else:
            dispatcher.utter_message(response="utter_commune_not_found", commune=query[:80])
        return {"commune": None, "commune_insee": None, "commune_name": None}


class ValidateIncivilite(_ReportFormValidation):
    fixed_report_type = "incivilite"

    def name(self) -> str:
        return "validate_incivilite_form"

    def validate_lieu(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = _clean(value if isinstance(value, str) else None)
        return {"lieu": text if text and not _is_payload(text) else None}

    def validate_frequence(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = _clean(value if isinstance(value, str) else None)
        return {"frequence": text if text and not _is_payload(text) else None}


class ValidateReportForm(_ReportFormValidation):
    def name(self) -> str:
        return "validate_report_form"


class ActionShowSummary(Action):
    def name(self) -> str:
        return "action_show_summary"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        labels = texts()["fields"]
        type_names = texts()["report_types"]
        lines = []
        for slot, label in labels.items():
            value = tracker.get_slot(slot)
            if not value:
                continue
            if slot == "report_type":
                value = type_names.get(value, value)
            lines.append(f"• {label} : {value}")
        dispatcher.utter_message(response="utter_report_summary", summary="\n".join(lines))
        return []


class ActionFileReport(Action):
    """Sends the confirmed report to the gateway, which routes it and stores the ticket."""

    def name(self) -> str:
        return "action_file_report"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        report_type = tracker.get_slot("report_type")
        if report_type not in REPORT_TYPES:
            dispatcher.utter_message(response="utter_default")
            return [SlotSet("filing_pending", False)]
        fields = {
            slot: tracker.get_slot(slot)
            for slot in ("description", "lieu", "frequence")
            if tracker.get_slot(slot)
        }
        metadata = tracker.latest_message.get("metadata") or {}
        body = {
            "report_type": report_type,
            "commune_insee": tracker.get_slot("commune_insee"),
            "fields": fields,
            "conversation_id": tracker.sender_id,
            "language": metadata.get("language", "fr"),
            "channel": metadata.get("channel", "web"),
            # idempotency: one report per conversation and form completion
            "idempotency_key": f"{tracker.sender_id}:{_form_completion_marker(tracker)}",
        }
        try:
            timeout = aiohttp.ClientTimeout(total=10)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.post(
                    f"{gateway_url()}/internal/v1/reports",
                    json=body,
                    headers={"Authorization": f"Bearer {internal_token()}"},
                ) as response:
                    if response.status != 201 and response.status != 200:
                        raise RuntimeError(f"gateway answered HTTP {response.status}")
                    ticket = await response.json()
        except (aiohttp.ClientError, RuntimeError, TimeoutError) as exc:
            logger.warning("filing failed for report type %s: %s", report_type, type(exc).__name__)
            dispatcher.utter_message(response="utter_report_filing_failed")
            return [SlotSet("filing_pending", True)]
        destinations = ", ".join(d["agency_name"] for d in ticket.get("destinations", []))
        dispatcher.utter_message(
            response="utter_report_filed",
            reference=ticket["reference"],
            destinations=destinations or "le service compétent",
        )
        return [
            *[SlotSet(slot, None) for slot in REPORT_SLOTS],
            SlotSet("filing_pending", False),
            SlotSet("ticket_reference", ticket["reference"]),
        ]


def _form_completion_marker(tracker: Tracker) -> str:
    """Timestamp of the last summary shown: a retry of the same report reuses it."""
    for event in reversed(tracker.events):
        if event.get("event") == "action" and event.get("name") == "action_show_summary":
            return str(event.get("timestamp"))
    return "none"


class ActionResetReport(Action):
    def name(self) -> str:
        return "action_reset_report"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        return [*[SlotSet(slot, None) for slot in REPORT_SLOTS], SlotSet("filing_pending", False)]


__all__ = [
    "ActionFileReport",
    "ActionResetReport",
    "ActionShowSummary",
    "ValidateIncivilite",
    "ValidateReportForm",
]
