"""The confirmation of a filed report, the same in every channel (chat, guided mode, Telegram).

From the ticket's citizen summary (``webhook.store.tickets.ticket_summary``: reference, tracking
code, destinations, referrals) it says, in the citizen's language:

* the reference (and the personal tracking code, to the conversation that filed it);
* who receives it — a provisional agency ("… — contact à configurer") is never named to a
  citizen: "le service départemental compétent" instead;
* what happens next (per report type where the chat knows it, else in general);
* the helplines the routing decision chose, with their numbers from the reference data;
* that this is not an emergency line: 17 or 112, 114 by SMS.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import routing
from reports.fields import _texts
from reports.model import pick


def _t(key: str, language: str, **values: Any) -> str:
    return str(pick(_texts()["filed"][key], language)).format(**values)


def destination_names(destinations: list[Mapping[str, Any]], language: str) -> list[str]:
    """The agencies a citizen is told about, without provisional names, each once."""
    engine = routing.get_engine()
    names: list[str] = []
    for destination in destinations:
        try:
            agency = engine.agency(str(destination.get("agency_id")))
            placeholder = agency.to_configure
        except (KeyError, routing.RoutingError):
            placeholder = False
        name = _t("placeholder_agency", language) if placeholder else destination["agency_name"]
        if name not in names:
            names.append(name)
    return names


def referral_lines(referrals: list[str], language: str) -> list[str]:
    """The helplines of the routing decision, with their numbers (or web addresses, or for an
    entry with neither, its purpose)."""
    engine = routing.get_engine()
    lines: list[str] = []
    for helpline_id in referrals:
        try:
            helpline = engine.helpline(helpline_id)
        except (KeyError, routing.RoutingError):
            continue
        # an entry without a number or an address (the bank's own opposition line) says what
        # to do, from the reference data, rather than a bare name
        contact = helpline.number or helpline.url or helpline.purpose
        lines.append(f"• {helpline.name} : {contact}" if contact else f"• {helpline.name}")
    if lines:
        lines.insert(0, _t("referrals", language))
    return lines


def next_step(report_type: str | None, language: str) -> str:
    by_type = _texts()["filed"]["next_step_by_type"].get(language) or {}
    if report_type in by_type:
        return str(by_type[report_type])
    return _t("next_step", language)


def reference_text(reference: str, tracking_code: str | None, language: str) -> str:
    """The reference (and the citizen's tracking code) of a report filed in a turn whose answer
    was lost: the first lines of the confirmation, alone."""
    lines = [_t("reference", language, reference=reference)]
    if tracking_code:
        lines.append(_t("tracking", language, code=tracking_code))
    return "\n".join(lines)


def filed_text(summary: Mapping[str, Any], language: str) -> str:
    """The whole confirmation, one message."""
    lines = [_t("reference", language, reference=summary["reference"])]
    if summary.get("tracking_code"):
        lines.append(_t("tracking", language, code=summary["tracking_code"]))
    names = destination_names(list(summary.get("destinations") or []), language)
    if names:
        lines.append(_t("sent_to", language, destinations=", ".join(names)))
    else:
        lines.append(_t("national", language))
    lines.append(next_step(summary.get("report_type"), language))
    lines.extend(referral_lines(list(summary.get("referrals") or []), language))
    lines.append(_t("not_emergency", language))
    return "\n".join(lines)
