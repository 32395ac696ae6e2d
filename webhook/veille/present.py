"""How an alert is shown — page, API, e-mail, webhook — with the small-count rule applied to its
figures:

- its count is shown when above 10, else "< 11";
- its expectation comes from the area's baseline count: when that count is between 1 and 10 (and
  above the floor), showing the expectation would give the count back (expected × weeks), so it
  is shown as a bound ("< 0,9");
- its p-value is exact only when both are shown (from p and the expectation one recovers the
  count), else "< 0.001", which every alert satisfies.

One French sentence an officer can read aloud explains it, e.g. "Moins de 11 signalements
d'arnaque (faux conseiller bancaire) à Forcalquier en 7 jours, contre 0,2 attendu."
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from webhook.agency import territory as territories
from webhook.store.db import VeilleAlert
from webhook.veille.config import VeilleConfig
from webhook.veille.figures import utc

DEMO_PREFIX = "[DÉMONSTRATION] "


def decimal_fr(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}".replace(",", "\u202f").replace(".", ",")


@dataclass(frozen=True)
class PublicFigures:
    count: int | str
    expected: float | str
    p_value: float | str
    count_text: str
    expected_text: str
    count_public: bool


def public_figures(alert: VeilleAlert, config: VeilleConfig) -> PublicFigures:
    small = config.small_count_max
    count_public = alert.count > small
    expected_public = alert.floor_used or alert.baseline_count == 0 or alert.baseline_count > small
    count: int | str = alert.count if count_public else f"< {small + 1}"
    if expected_public:
        expected: float | str = round(alert.expected, 2)
        expected_text = decimal_fr(alert.expected)
    else:
        bound = (small + 1) / alert.baseline_weeks * config.alerts.window_days / 7
        expected = f"< {bound:.1f}"
        expected_text = f"moins de {decimal_fr(bound)}"
    if count_public and expected_public:
        p_value: float | str = float(f"{alert.p_value:.3g}")
    else:
        p_value = f"< {config.alerts.p_value_max:g}"
    return PublicFigures(
        count=count,
        expected=expected,
        p_value=p_value,
        count_text=str(alert.count) if count_public else "",
        expected_text=expected_text,
        count_public=count_public,
    )


def _lower_first(text: str) -> str:
    if len(text) > 1 and text[1].islower():
        return text[0].lower() + text[1:]
    return text


def area_name(alert: VeilleAlert) -> str:
    return territories.area_label(alert.area_kind, alert.area_code, alert.departement)


def what(alert: VeilleAlert, config: VeilleConfig) -> str:
    """``d'arnaque (faux conseiller bancaire)``."""
    phrase = str(config.texts["type_phrases"][alert.report_type])
    if alert.subtype:
        label = config.subtype_label(alert.report_type, alert.subtype)
        phrase += f" ({_lower_first(label)})"
    return phrase


def where(alert: VeilleAlert, config: VeilleConfig) -> str:
    return str(config.texts["area_phrases"][alert.area_kind]).format(name=area_name(alert))


def explanation(alert: VeilleAlert, config: VeilleConfig) -> str:
    figures = public_figures(alert, config)
    template = config.texts["explanation" if figures.count_public else "explanation_small"]
    return str(template).format(
        count=figures.count_text,
        what=what(alert, config),
        where=where(alert, config),
        days=config.alerts.window_days,
        expected=figures.expected_text,
    )


def category_label(alert: VeilleAlert, config: VeilleConfig) -> str:
    label = config.type_label(alert.report_type)
    if alert.subtype:
        label += f" — {config.subtype_label(alert.report_type, alert.subtype)}"
    return label


def _iso(value: dt.datetime | None) -> str | None:
    return utc(value).isoformat() if value is not None else None


def alert_document(alert: VeilleAlert, config: VeilleConfig, *, demo: bool) -> dict[str, Any]:
    """The alert as the API and the webhook give it (SPEC §7)."""
    figures = public_figures(alert, config)
    text = explanation(alert, config)
    return {
        "id": alert.id,
        "report_type": alert.report_type,
        "subtype": alert.subtype or None,
        "area": {"kind": alert.area_kind, "code": alert.area_code, "name": area_name(alert)},
        "departement": alert.departement,
        "window_start": _iso(alert.window_start),
        "window_end": _iso(alert.window_end),
        "count": figures.count,
        "expected": figures.expected,
        "p_value": figures.p_value,
        "status": alert.status,
        "explanation": (DEMO_PREFIX + text) if demo else text,
        "raised_at": _iso(alert.raised_at),
        "updated_at": _iso(alert.updated_at),
        "ended_at": _iso(alert.ended_at),
        "demo": demo,
    }


def alert_subject(alert: VeilleAlert, config: VeilleConfig, *, demo: bool) -> str:
    subject = f"[Tranquillité] Alerte de veille : {category_label(alert, config)} — "
    subject += area_name(alert)
    return (DEMO_PREFIX + subject) if demo else subject


def alert_email_text(alert: VeilleAlert, config: VeilleConfig, *, demo: bool) -> str:
    """The e-mail body (the outbox adds the link to the alert's page)."""
    lines = [
        "Bonjour,",
        "",
        "La cellule de veille de Tranquillité signale une convergence de faits :",
        "",
        explanation(alert, config),
        "",
        f"Type : {category_label(alert, config)}",
        f"Territoire : {area_name(alert)}",
        f"Période : du {utc(alert.window_start):%d/%m/%Y %H:%M} au "
        f"{utc(alert.window_end):%d/%m/%Y %H:%M} (UTC)",
        "",
        "Ce message ne contient aucune donnée personnelle ni aucun contenu de signalement ; "
        "les effectifs de 1 à 10 ne sont jamais indiqués.",
    ]
    if demo:
        lines.insert(0, "DONNÉES DE DÉMONSTRATION, FICTIVES.")
    return "\n".join(lines)
