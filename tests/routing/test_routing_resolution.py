"""Commune resolution: names, postal codes, INSEE codes, homonyms, former communes."""

from __future__ import annotations

import pytest

from routing.engine import Engine
from routing.normalize import name_key, name_key_without_article, with_de

FOUND = [
    ("39478", "39478", "insee"),
    ("Lons le saunier", "39300", "name"),
    ("LONS-LE-SAUNIER", "39300", "name"),
    ("lons-le-saunier ", "39300", "name"),
    ("Digne-les-Bains", "04070", "name"),
    ("digne les bains", "04070", "name"),
    ("Digne", "04070", "name_prefix"),
    ("Saint-Claude (39)", "39478", "name"),
    ("St-Claude, Jura", "39478", "name"),
    ("39200 Saint-Claude", "39478", "postal_code"),
    ("Saint Claude 39200", "39478", "postal_code"),
    ("Paris 15e", "75115", "name"),
    ("paris 15eme arrondissement", "75115", "name"),
    ("Paris 1er", "75101", "name"),
    ("75015", "75115", "postal_code"),
    ("Lyon 3e", "69383", "name"),
    ("Marseille 1er arrondissement", "13201", "name"),
    ("Paris", "75056", "name"),
    ("Le Mans", "72181", "name"),
    ("mans", "72181", "name"),
    ("les rousses", "39470", "name"),
    ("L'Haÿ-les-Roses", "94038", "name"),
    ("l hay les roses", "94038", "name"),
    ("Ste Maxime", "83115", "name"),
    ("Manosque", "04112", "name"),
    ("04100", "04112", "postal_code"),
    ("Saint-Lupicin", "39491", "former_name"),  # commune déléguée of Coteaux du Lizon
    ("39491", "39491", "insee"),
]


@pytest.mark.parametrize(("query", "insee", "matched_by"), FOUND, ids=[q for q, _, _ in FOUND])
def test_found(engine: Engine, query: str, insee: str, matched_by: str) -> None:
    result = engine.resolve_commune(query)
    assert result.status == "found", [c.insee for c in result.candidates]
    assert [c.insee for c in result.candidates] == [insee]
    assert result.matched_by == [matched_by]


AMBIGUOUS = [
    ("st claude", {"39478", "97124"}),  # Jura and Guadeloupe
    ("Sainte-Colombe", None),
    ("Saint-Aubin", None),
    ("39200", {"39478", "39200"}),  # postal code of the Saint-Claude area + INSEE of Dompierre
    ("Rousses", {"48130", "39470"}),  # Rousses (Lozère) and Les Rousses (Jura)
    # a name matched exactly, and a larger commune whose name begins with it: what residents
    # call it ("Lons" in the Jura), the citizen chooses
    ("Lons", {"64348", "39300"}),
    ("Aix", {"19002", "13001", "73008"}),
]


def test_larger_namesakes_come_after_the_exact_name_and_smaller_ones_do_not(
    engine: Engine,
) -> None:
    result = engine.resolve_commune("Lons")
    assert [c.insee for c in result.candidates] == ["64348", "39300"]
    assert result.matched_by == ["name", "name_prefix"]
    # Paris-l'Hôpital is smaller than Paris; "Lyons-la-Forêt" is no "Lyon" followed by words
    assert [c.insee for c in engine.resolve_commune("Paris").candidates] == ["75056"]
    assert [c.insee for c in engine.resolve_commune("Lyon").candidates] == ["69123"]


@pytest.mark.parametrize(("query", "expected"), AMBIGUOUS, ids=[q for q, _ in AMBIGUOUS])
def test_homonyms_return_every_candidate(
    engine: Engine, query: str, expected: set[str] | None
) -> None:
    result = engine.resolve_commune(query)
    assert result.status == "ambiguous"
    insees = [c.insee for c in result.candidates]
    assert len(insees) == len(set(insees)) >= 2
    if expected is not None:
        assert expected <= set(insees)


def test_homonyms_list_all_communes_of_that_name(engine: Engine) -> None:
    expected = {c.insee for c in engine.communes() if c.name == "Sainte-Colombe"}
    assert len(expected) >= 10
    result = engine.resolve_commune("sainte colombe")
    assert {
        c.insee
        for c in result.candidates
        if result.matched_by[result.candidates.index(c)] == "name"
    } == expected


def test_departement_hint_picks_one_homonym(engine: Engine) -> None:
    result = engine.resolve_commune("Sainte-Colombe (05)")
    assert result.status == "found"
    assert result.candidates[0].departement == "05"


def test_insee_code_that_is_also_a_postal_code_lists_insee_first(engine: Engine) -> None:
    result = engine.resolve_commune("39300")  # Lons-le-Saunier (INSEE) / Champagnole (postal)
    assert result.status == "ambiguous"
    assert result.candidates[0].insee == "39300" and result.matched_by[0] == "insee"
    assert engine.resolve_commune("39300", kind="insee").candidates[0].name == "Lons-le-Saunier"
    by_postal = engine.resolve_commune("39300", kind="postal_code")
    assert "39097" in {c.insee for c in by_postal.candidates}  # Champagnole
    assert "39300" not in {c.insee for c in by_postal.candidates}


def test_former_insee_code_maps_to_current_commune(engine: Engine) -> None:
    # 39125 (Chaumont) is one of Saint-Claude's former codes.
    result = engine.resolve_commune("39125", kind="insee")
    assert [c.insee for c in result.candidates] == ["39478"]
    assert engine.commune("39125").insee == "39478"  # type: ignore[union-attr]
    assert engine.decide("autre", "39125").commune_insee == "39478"


@pytest.mark.parametrize("query", ["", "   ", "Atlantide", "00000", "xyz 12"])
def test_not_found(engine: Engine, query: str) -> None:
    result = engine.resolve_commune(query)
    assert result.status == "not_found" and result.candidates == []


def test_commune_fields(engine: Engine) -> None:
    commune = engine.resolve_commune("Lons le saunier").candidates[0]
    assert commune.insee == "39300"
    assert commune.name == "Lons-le-Saunier"
    assert commune.departement == "39"
    assert commune.postal_codes == ("39000",)
    assert commune.population and commune.population > 10_000
    assert commune.epci_siren and len(commune.epci_siren) == 9
    arrondissement = engine.commune("75115")
    assert arrondissement is not None and arrondissement.kind == "arrondissement"
    assert arrondissement.parent_insee == "75056"


@pytest.mark.parametrize(
    ("text", "key", "without_article"),
    [
        ("Saint-Étienne", "saintetienne", "saintetienne"),
        ("St Étienne", "saintetienne", "saintetienne"),
        ("Ste-Foy-lès-Lyon", "saintefoyleslyon", "saintefoyleslyon"),
        ("Le Mans", "lemans", "mans"),
        ("L'Haÿ-les-Roses", "lhaylesroses", "haylesroses"),
        ("Œuilly", "oeuilly", "oeuilly"),
        ("Paris 15e Arrondissement", "paris15", "paris15"),
        ("Châlons s/ Marne", "chalonssurmarne", "chalonssurmarne"),
        ("Le", "le", "le"),
    ],
)
def test_name_keys(text: str, key: str, without_article: str) -> None:
    assert name_key(text) == key
    assert name_key_without_article(text) == without_article


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Dole", "de Dole"),
        ("Arbois", "d'Arbois"),
        ("Le Mans", "du Mans"),
        ("Les Rousses", "des Rousses"),
        ("La Pesse", "de la Pesse"),
        ("L'Abergement", "de l'Abergement"),
        ("Écully", "d'Écully"),
    ],
)
def test_with_de(name: str, expected: str) -> None:
    assert with_de(name) == expected
