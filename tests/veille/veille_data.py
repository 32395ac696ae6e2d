"""A twelve-week data set for the page, chart, CSV and API tests of the cellule de veille, and
its true counts computed here, independently of webhook.veille (from the routing data only)."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from dataclasses import dataclass, field

from veille_support import DIGNE, DOLE, FORCALQUIER, NOW, Sessions, insert_tickets

import routing
from webhook.veille.weeks import Week, last_weeks

MANOSQUE = "04112"
SUBTYPE_QUESTION = {
    "arnaque": "type_arnaque",
    "vol_cambriolage": "type_vol",
    "incivilite": "type_incivilite",
}
DEPARTEMENT_ONLY = {"enfant_en_danger", "violences_conjugales", "personne_vulnerable"}


@dataclass
class DataSet:
    weeks: list[Week]
    # (week label, commune, report type, subtype or "") → count
    rows: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)

    def truth(self, departement: str) -> Counter[tuple[str, str, str, str]]:
        """(week, level:code, category) → count, for every level, as the veille should count."""
        engine = routing.get_engine()
        out: Counter[tuple[str, str, str, str]] = Counter()
        for (week, commune, report_type, subtype), n in self.rows.items():
            c = engine.commune(commune)
            assert c is not None
            if c.departement != departement:
                continue
            categories = [report_type]
            if report_type in SUBTYPE_QUESTION:
                categories.append(f"{report_type}:{subtype or 'non_precise'}")
            if report_type in DEPARTEMENT_ONLY:
                areas = [("departement", departement)]
            else:
                areas = [("commune", commune), ("departement", departement)]
                if c.epci_siren:
                    areas.append(("epci", c.epci_siren))
            for kind, code in areas:
                for category in categories:
                    if ":" in category and kind == "commune" and c.epci_siren:
                        continue  # sub-kinds are counted from the EPCI up
                    out[(week, kind, code, category)] += n
        return out


async def build(sessions: Sessions, seed: int = 15) -> DataSet:
    """About 1,300 reports over the twelve complete weeks before NOW, in 04 and 39."""
    rnd = random.Random(seed)
    weeks = last_weeks(NOW, 12)
    data = DataSet(weeks=weeks)
    engine = routing.get_engine()
    small_communes = sorted(
        c.insee for c in engine.communes() if c.departement == "04" and c.kind == "commune"
    )[:60]
    plan: list[tuple[str, str, str, int]] = [
        (MANOSQUE, "arnaque", "faux_conseiller", 14),
        (MANOSQUE, "arnaque", "sms_internet", 3),
        (MANOSQUE, "incivilite", "bruit", 12),
        (MANOSQUE, "vol_cambriolage", "cambriolage", 2),
        (DIGNE, "arnaque", "faux_policier", 2),
        (DIGNE, "arnaque", "", 2),
        (DIGNE, "incivilite", "tags", 13),
        (DIGNE, "violences_conjugales", "", 2),
        (FORCALQUIER, "arnaque", "faux_conseiller", 1),
        (DOLE, "incivilite", "bruit", 20),
    ]
    tickets: list[dict[str, object]] = []
    for week in weeks:
        for commune, report_type, subtype, mean in plan:
            count = max(0, round(rnd.gauss(mean, mean**0.5)))
            data.rows[(week.label, commune, report_type, subtype)] += count
            tickets += _tickets(rnd, week, commune, report_type, subtype, count)
        for _ in range(25):
            commune = rnd.choice(small_communes)
            report_type = rnd.choice(["arnaque", "incivilite", "vol_cambriolage", "harcelement"])
            subtype = ""
            if report_type in SUBTYPE_QUESTION:
                question = SUBTYPE_QUESTION[report_type]
                from reports import model

                subtype = rnd.choice([c.id for c in model().questions[question].choices])
            data.rows[(week.label, commune, report_type, subtype)] += 1
            tickets += _tickets(rnd, week, commune, report_type, subtype, 1)
    await insert_tickets(sessions, tickets)
    return data


def _tickets(
    rnd: random.Random, week: Week, commune: str, report_type: str, subtype: str, count: int
) -> list[dict[str, object]]:
    departement = routing.get_engine().commune(commune).departement  # type: ignore[union-attr]
    out: list[dict[str, object]] = []
    for _ in range(count):
        moment = week.start + dt.timedelta(seconds=rnd.randrange(7 * 86400 - 7200) + 3600)
        fields = {"description": "Jean Martin 06 12 34 56 78"}
        if subtype:
            fields[SUBTYPE_QUESTION[report_type]] = subtype
        out.append(
            {
                "report_type": report_type,
                "departement": departement,
                "commune_insee": commune,
                "fields": fields,
                "subtype": subtype or None,
                "created_at": moment,
                "conversation_id": f"web-{rnd.randrange(10**9)}",
            }
        )
    return out
