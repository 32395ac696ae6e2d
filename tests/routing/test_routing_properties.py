"""Properties over all ~35,000 communes: determinism, existing agencies, normalisation."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

import routing
from routing import FLAGS, REPORT_TYPES
from routing.engine import Engine

ENGINE = routing.get_engine()
ALL_INSEE = sorted(c.insee for c in ENGINE.communes())
NO_FORCE = {"60694", "98901"}  # Les Hauts-Talican (unresolved in PEL), Clipperton


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def test_all_communes_are_loaded(engine: Engine) -> None:
    assert 34_900 < len(ALL_INSEE) < 35_200
    assert len({c.departement for c in engine.communes()}) >= 100


def test_every_commune_and_report_type_names_existing_agencies(engine: Engine) -> None:
    """Full loop: 35,000 communes x 10 report types (default flags)."""
    for insee in ALL_INSEE:
        for report_type in REPORT_TYPES:
            decision = engine.decide(report_type, insee)
            assert decision.commune_insee == insee
            if insee not in NO_FORCE:
                assert decision.primary, (insee, report_type)
            for destination in decision.destinations:
                assert engine.agency(destination.agency_id).name == destination.agency_name
            for referral in decision.referrals:
                engine.helpline(referral)


def test_every_commune_has_a_competent_force_and_department_cells(engine: Engine) -> None:
    for insee in ALL_INSEE:
        commune = engine.commune(insee)
        assert commune is not None
        forces = engine.force_agencies(insee)
        if insee in NO_FORCE:
            assert forces == ()
            continue
        assert 1 <= len(forces) <= 2
        assert {engine.agency(a).kind for a in forces} <= {"police_nationale", "gendarmerie"}
        assert engine.role_agencies("crip", commune)
        assert engine.role_agencies("adult_cell", commune)


def test_every_commune_name_resolves_to_itself(engine: Engine) -> None:
    """And case, accents, hyphens and apostrophes do not change the result."""
    for commune in engine.communes():
        result = engine.resolve_commune(commune.name)
        assert commune in result.candidates, commune.insee
        for variant in (
            commune.name.upper(),
            commune.name.lower(),
            _strip_accents(commune.name),
            commune.name.replace("-", " ").replace("'", " "),
            commune.name.replace("Saint-", "St-").replace("Sainte-", "Ste-"),
        ):
            assert engine.resolve_commune(variant) == result.__class__(
                query=variant,
                status=result.status,
                candidates=result.candidates,
                matched_by=result.matched_by,
            ), (commune.name, variant)


def test_every_insee_code_resolves(engine: Engine) -> None:
    for insee in ALL_INSEE:
        result = engine.resolve_commune(insee)
        assert result.candidates[0].insee == insee
        assert result.matched_by[0] == "insee"


def test_every_postal_code_of_a_commune_resolves_to_it(engine: Engine) -> None:
    for commune in engine.communes():
        for postal_code in commune.postal_codes:
            result = engine.resolve_commune(postal_code, kind="postal_code")
            if commune.kind == "commune" and any(
                c.parent_insee == commune.insee for c in result.candidates
            ):
                continue  # Paris/Lyon/Marseille: the arrondissement is more precise
            assert commune in result.candidates, (commune.insee, postal_code)


flags_strategy = st.fixed_dictionaries({flag: st.booleans() for flag in FLAGS})


@settings(max_examples=300, deadline=None)
@given(
    insee=st.sampled_from(ALL_INSEE),
    report_type=st.sampled_from(REPORT_TYPES),
    flags=flags_strategy,
)
def test_decisions_are_deterministic_and_consistent(
    insee: str, report_type: str, flags: dict[str, bool]
) -> None:
    first = ENGINE.decide(report_type, insee, **flags)
    second = ENGINE.decide(report_type, insee, **flags)
    assert first == second
    assert first.to_dict() == second.to_dict()
    ids = [d.agency_id for d in first.destinations]
    assert len(ids) == len(set(ids))  # an agency is never listed twice
    assert len(first.referrals) == len(set(first.referrals))
    assert all(d.rule_id in first.rule_ids for d in first.destinations)
    assert [d.role for d in first.destinations] == sorted(
        (d.role for d in first.destinations), key=lambda role: role != "primary"
    )
    if flags["danger"]:
        assert {"17", "112"} <= set(first.referrals)
        assert first.rule_ids[0] == "danger-immediat"
    if first.needs_address:
        assert any(ENGINE.agency(a).kind in ("police_nationale", "gendarmerie") for a in ids)


@settings(max_examples=200, deadline=None)
@given(
    insee=st.sampled_from(ALL_INSEE),
    report_type=st.sampled_from(REPORT_TYPES),
    flags=flags_strategy,
    transform=st.sampled_from(["upper", "lower", "ascii", "spaces", "padding"]),
)
def test_resolving_a_normalised_name_gives_the_same_decision(
    insee: str, report_type: str, flags: dict[str, bool], transform: str
) -> None:
    name = ENGINE.commune(insee).name  # type: ignore[union-attr]
    variant = {
        "upper": name.upper(),
        "lower": name.lower(),
        "ascii": _strip_accents(name),
        "spaces": name.replace("-", " ").replace("'", " "),
        "padding": f"  {name}  ",
    }[transform]
    original = ENGINE.resolve_commune(name)
    transformed = ENGINE.resolve_commune(variant)
    assert transformed.candidates == original.candidates
    for commune in original.candidates:
        assert ENGINE.decide(report_type, commune.insee, **flags) == ENGINE.decide(
            report_type, commune.insee, **flags
        )


@settings(max_examples=100, deadline=None)
@given(report_type=st.sampled_from(REPORT_TYPES), flags=flags_strategy)
def test_national_fallback_never_names_an_agency(report_type: str, flags: dict[str, bool]) -> None:
    decision = ENGINE.decide(report_type, None, **flags)
    assert decision.destinations == []
    assert decision.rule_ids[-1] == "repli-national"
    for referral in decision.referrals:
        ENGINE.helpline(referral)


def test_fresh_engine_gives_identical_decisions(engine: Engine) -> None:
    fresh = routing.load_engine()
    sample = ALL_INSEE[::97]
    for insee in sample:
        for report_type in REPORT_TYPES:
            assert fresh.decide(report_type, insee, danger=True) == engine.decide(
                report_type, insee, danger=True
            )
