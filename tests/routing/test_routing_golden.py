"""Golden tests: départements 04 and 39, and one case (at least) per row of SPEC §4."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from routing import FLAGS, REPORT_TYPES
from routing.engine import Engine

GOLDEN = Path(__file__).with_name("golden_force_04_39.csv")
"""Extract of ../shared/data/force_competence_communes_04_39.csv (referential PEL 2023):
every current commune of 04 and 39 with its force and, for GN, its brigade."""

PN_COMMUNES = {
    "04070": ("Digne-les-Bains", "pn-61342"),
    "04112": ("Manosque", "pn-61356"),
    "39300": ("Lons-le-Saunier", "pn-66163"),
    "39362": ("Montmorot", "pn-66163"),
    "39411": ("Perrigny", "pn-66163"),
    "39198": ("Dole", "pn-66176"),
    "39150": ("Choisey", "pn-66176"),
}


def _golden() -> list[dict[str, str]]:
    with GOLDEN.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_golden_table_covers_every_commune_of_04_and_39(engine: Engine) -> None:
    shipped = {c.insee for c in engine.communes() if c.departement in ("04", "39")}
    assert {row["code_insee"] for row in _golden()} == shipped
    assert len(shipped) == 198 + 492


@pytest.mark.parametrize("report_type", REPORT_TYPES)
@pytest.mark.parametrize("flags", ["none", "all"])
def test_every_commune_of_04_39_routes_to_existing_agencies(
    engine: Engine, report_type: str, flags: str
) -> None:
    options = {flag: flags == "all" for flag in FLAGS}
    for row in _golden():
        decision = engine.decide(report_type, row["code_insee"], **options)
        assert decision.primary, (row["code_insee"], report_type)
        for destination in decision.destinations:
            agency = engine.agency(destination.agency_id)
            assert agency.name == destination.agency_name
            assert destination.rule_id in decision.rule_ids
            # Configured départements never fall back to a placeholder agency.
            assert not agency.placeholder, (row["code_insee"], agency.id)


@pytest.mark.parametrize(
    "insee", sorted(PN_COMMUNES), ids=[n for n, _ in sorted(PN_COMMUNES.values())]
)
def test_police_nationale_communes(engine: Engine, insee: str) -> None:
    name, service = PN_COMMUNES[insee]
    assert engine.commune(insee).name == name  # type: ignore[union-attr]
    decision = engine.decide("vol_cambriolage", insee)
    assert [d.agency_id for d in decision.primary] == [service]
    assert engine.agency(service).kind == "police_nationale"
    assert not decision.needs_address


def test_every_other_commune_goes_to_its_named_brigade(engine: Engine) -> None:
    rows = _golden()
    assert {r["code_insee"] for r in rows if r["force"] == "PN"} == set(PN_COMMUNES)
    checked = 0
    for row in rows:
        if row["force"] != "GN":
            continue
        decision = engine.decide("vol_cambriolage", row["code_insee"])
        (primary,) = decision.primary
        agency = engine.agency(primary.agency_id)
        assert agency.kind == "gendarmerie"
        assert agency.name == row["unite_gn"], row["code_insee"]
        assert agency.phone and agency.address and agency.contact_known
        checked += 1
    assert checked == 690 - len(PN_COMMUNES)


# ---------------------------------------------------------------------------- SPEC §4, row by row

AIGLUN = "04001"  # 04, gendarmerie (Brigade de proximité de Digne-les-Bains)
MANOSQUE = "04112"  # 04, police nationale + police municipale
SAINT_CLAUDE = "39478"  # 39, gendarmerie + police municipale
ARBOIS = "39013"  # 39, gendarmerie, no police municipale
LYON_3 = "69383"  # not configured: placeholders


def case(
    report_type: str,
    insee: str | None,
    *,
    flags: dict[str, bool] | None = None,
    primary: list[str],
    copies: list[str] | None = None,
    rule_ids: list[str],
    referrals: list[str],
) -> Any:
    return pytest.param(
        report_type,
        insee,
        flags or {},
        primary,
        copies or [],
        rule_ids,
        referrals,
        id=f"{rule_ids[-1]}-{insee}-{'+'.join(sorted(flags or {}))}",
    )


SPEC_CASES = [
    # enfant_en_danger: CRIP; force in copy if offence or danger; 119 (+17/112 if danger)
    case(
        "enfant_en_danger",
        AIGLUN,
        primary=["04-crip"],
        rule_ids=["enfant-en-danger"],
        referrals=["119"],
    ),
    case(
        "enfant_en_danger",
        SAINT_CLAUDE,
        flags={"danger": True},
        primary=["39-crip"],
        copies=["gn-3004103"],
        rule_ids=["danger-immediat", "enfant-en-danger", "enfant-en-danger.force"],
        referrals=["17", "112", "119"],
    ),
    case(
        "enfant_en_danger",
        LYON_3,
        flags={"offence": True},
        primary=["69-crip"],
        copies=["pn-72442"],
        rule_ids=["enfant-en-danger", "enfant-en-danger.force"],
        referrals=["119"],
    ),
    # harcelement, minor victim: force; CRIP if the child seems in danger; 3018
    case(
        "harcelement",
        MANOSQUE,
        flags={"minor": True},
        primary=["pn-61356"],
        rule_ids=["harcelement-mineur"],
        referrals=["3018"],
    ),
    case(
        "harcelement",
        ARBOIS,
        flags={"minor": True, "danger": True},
        primary=["gn-3004084"],
        copies=["39-crip"],
        rule_ids=["danger-immediat", "harcelement-mineur", "harcelement-mineur.crip"],
        referrals=["17", "112", "3018"],
    ),
    # harcelement, adult: force; neighbour conflict without threats -> mediation chain; 3018 online
    case(
        "harcelement",
        AIGLUN,
        flags={"online": True},
        primary=["gn-3004364"],
        rule_ids=["harcelement-adulte"],
        referrals=["3018"],
    ),
    case(
        "harcelement",
        MANOSQUE,
        flags={"neighbour_conflict": True},
        primary=["04-pm-manosque"],
        rule_ids=["harcelement-voisinage"],
        referrals=[],
    ),
    case(
        "harcelement",
        ARBOIS,
        flags={"neighbour_conflict": True},
        primary=["mairie-39013"],
        rule_ids=["harcelement-voisinage"],
        referrals=[],
    ),
    case(
        "harcelement",
        ARBOIS,
        flags={"neighbour_conflict": True, "offence": True},
        primary=["gn-3004084"],
        rule_ids=["harcelement-adulte"],
        referrals=[],
    ),
    # violences_conjugales: force; 17 if danger; 3919; arretonslesviolences
    case(
        "violences_conjugales",
        SAINT_CLAUDE,
        primary=["gn-3004103"],
        rule_ids=["violences-conjugales"],
        referrals=["3919", "arretonslesviolences"],
    ),
    case(
        "violences_conjugales",
        MANOSQUE,
        flags={"danger": True},
        primary=["pn-61356"],
        rule_ids=["danger-immediat", "violences-conjugales"],
        referrals=["17", "112", "3919", "arretonslesviolences"],
    ),
    # arnaque: force; adult cell if senior who lost money or is targeted repeatedly
    case("arnaque", AIGLUN, primary=["gn-3004364"], rule_ids=["arnaque"], referrals=["17cyber"]),
    case(
        "arnaque",
        AIGLUN,
        flags={"senior": True, "money_lost": True},
        primary=["gn-3004364"],
        copies=["04-cippav"],
        rule_ids=["arnaque", "arnaque.adultes-vulnerables"],
        referrals=["17cyber", "opposition-bancaire", "perceval"],
    ),
    case(
        "arnaque",
        ARBOIS,
        flags={"senior": True, "repeated": True, "online": True},
        primary=["gn-3004084"],
        copies=["39-adultes-vulnerables"],
        rule_ids=["arnaque", "arnaque.adultes-vulnerables"],
        referrals=["17cyber", "thesee", "cybermalveillance"],
    ),
    case(
        "arnaque",
        ARBOIS,
        flags={"senior": True},
        primary=["gn-3004084"],
        rule_ids=["arnaque"],
        referrals=["17cyber"],
    ),
    # personne_vulnerable: CIPPAV (04) or equivalent; force if offence; 3977
    case(
        "personne_vulnerable",
        MANOSQUE,
        primary=["04-cippav"],
        rule_ids=["personne-vulnerable"],
        referrals=["3977"],
    ),
    case(
        "personne_vulnerable",
        SAINT_CLAUDE,
        flags={"offence": True},
        primary=["39-adultes-vulnerables"],
        copies=["gn-3004103"],
        rule_ids=["personne-vulnerable", "personne-vulnerable.force"],
        referrals=["3977"],
    ),
    # absence_vacances: force; police municipale in copy if any; OTV
    case(
        "absence_vacances",
        SAINT_CLAUDE,
        primary=["gn-3004103"],
        copies=["39-pm-saint-claude"],
        rule_ids=["absence-vacances", "absence-vacances.police-municipale"],
        referrals=["otv"],
    ),
    case(
        "absence_vacances",
        ARBOIS,
        primary=["gn-3004084"],
        rule_ids=["absence-vacances"],
        referrals=["otv"],
    ),
    # incivilite: mediation, else police municipale, else mairie; force for offences
    case("incivilite", MANOSQUE, primary=["04-pm-manosque"], rule_ids=["incivilite"], referrals=[]),
    case(
        "incivilite",
        ARBOIS,
        flags={"offence": True},
        primary=["mairie-39013"],
        copies=["gn-3004084"],
        rule_ids=["incivilite", "incivilite.force"],
        referrals=[],
    ),
    case("incivilite", LYON_3, primary=["pn-72442"], rule_ids=["incivilite"], referrals=[]),
    # vol_cambriolage, drogue_trafic: force; pré-plainte; 17 if in progress
    case(
        "vol_cambriolage",
        "39300",
        primary=["pn-66163"],
        rule_ids=["vol-cambriolage-drogue"],
        referrals=["pre-plainte"],
    ),
    case(
        "drogue_trafic",
        "39198",
        flags={"danger": True},
        primary=["pn-66176"],
        rule_ids=["danger-immediat", "vol-cambriolage-drogue"],
        referrals=["17", "112", "pre-plainte"],
    ),
    # autre: mairie, else force
    case("autre", ARBOIS, primary=["mairie-39013"], rule_ids=["autre"], referrals=[]),
    case("autre", LYON_3, primary=["pn-72442"], rule_ids=["autre"], referrals=[]),
    # no commune: national fallback, referrals only
    case(
        "violences_conjugales",
        None,
        flags={"danger": True},
        primary=[],
        rule_ids=["danger-immediat", "violences-conjugales", "repli-national"],
        referrals=["17", "112", "3919", "arretonslesviolences"],
    ),
]


@pytest.mark.parametrize(
    ("report_type", "insee", "flags", "primary", "copies", "rule_ids", "referrals"), SPEC_CASES
)
def test_spec_rules(
    engine: Engine,
    report_type: str,
    insee: str | None,
    flags: dict[str, bool],
    primary: list[str],
    copies: list[str],
    rule_ids: list[str],
    referrals: list[str],
) -> None:
    decision = engine.decide(report_type, insee, **flags)
    assert [d.agency_id for d in decision.primary] == primary
    assert [d.agency_id for d in decision.copies] == copies
    assert decision.rule_ids == rule_ids
    assert decision.referrals == referrals
    for destination in decision.destinations:
        engine.agency(destination.agency_id)
    assert decision.reason


def test_every_rule_of_rules_yml_is_exercised_by_a_spec_case(engine: Engine) -> None:
    covered = {rule_id for param in SPEC_CASES for rule_id in param.values[5]}
    declared = {r.id for r in engine.rules.rules} | {
        c.id for r in engine.rules.rules for c in r.copies
    }
    assert declared - covered == {"default"}  # reachable only if an operator removes a rule


def test_default_rule_is_last_and_unconditional(engine: Engine) -> None:
    last = engine.rules.rules[-1]
    assert last.id == "default" and last.condition.always


def test_otv_reason_states_the_force_rules(engine: Engine) -> None:
    pn = engine.decide("absence_vacances", MANOSQUE).reason
    gn = engine.decide("absence_vacances", AIGLUN).reason
    assert "3 à 45 jours" in pn and "résidence principale" in pn
    assert "secondaires" in gn and "veille" in gn


@pytest.mark.parametrize("insee", ["13004", "70285", "74010", "79329", "97107"])
def test_split_communes_route_to_both_forces_and_say_so(engine: Engine, insee: str) -> None:
    decision = engine.decide("vol_cambriolage", insee)
    kinds = sorted(engine.agency(d.agency_id).kind for d in decision.primary)
    assert kinds == ["gendarmerie", "police_nationale"]
    assert decision.needs_address
    assert "partagée entre police nationale et gendarmerie" in decision.reason


def test_split_commune_does_not_need_address_when_force_is_not_involved(engine: Engine) -> None:
    decision = engine.decide("enfant_en_danger", "13004")
    assert [d.agency_id for d in decision.destinations] == ["13-crip"]
    assert not decision.needs_address


@pytest.mark.parametrize("insee", ["75056", "13055"], ids=["paris", "marseille"])
def test_cities_with_several_police_services_ask_for_the_address(
    engine: Engine, insee: str
) -> None:
    decision = engine.decide("vol_cambriolage", insee)
    assert decision.needs_address
    assert "plusieurs services de police nationale" in decision.reason


def test_placeholder_agencies_say_contact_is_to_be_configured(engine: Engine) -> None:
    decision = engine.decide("enfant_en_danger", LYON_3)
    agency = engine.agency(decision.primary[0].agency_id)
    assert agency.placeholder and not agency.contact_known
    assert "à configurer" in agency.name
    assert "à configurer par un opérateur" in decision.reason


def test_jura_adult_cell_is_marked_unknown(engine: Engine) -> None:
    agency = engine.agency("39-adultes-vulnerables")
    assert not agency.contact_known
    assert agency.phone == agency.email == agency.address == ""
    assert "jura.fr" in agency.notes and "3977" in agency.notes


def test_no_commune_gives_national_fallback(engine: Engine) -> None:
    decision = engine.decide("enfant_en_danger", None)
    assert decision.destinations == [] and decision.commune_insee is None
    assert decision.referrals == ["119"]
    assert decision.rule_ids[-1] == "repli-national"
    assert "Commune inconnue" in decision.reason


def test_commune_without_force_in_data_keeps_its_department_cell(engine: Engine) -> None:
    decision = engine.decide("vol_cambriolage", "60694")  # Les Hauts-Talican: unresolved in PEL
    assert decision.destinations == []
    assert "Aucun service compétent" in decision.reason
    assert engine.decide("enfant_en_danger", "60694").primary[0].agency_id == "60-crip"
