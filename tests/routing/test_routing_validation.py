"""Loading validates the data: clear errors naming the file and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from routing import DataError, RoutingError, UnknownCommuneError, UnknownReportTypeError
from routing.engine import Engine
from routing.loader import load_engine


def _line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_shipped_data_loads(data_copy: Path) -> None:
    engine = load_engine(data_copy)
    assert engine.decide("autre", "39013").primary


def test_dangling_agency_id_in_areas(data_copy: Path) -> None:
    areas = data_copy / "areas.yml"
    _replace(areas, "{police_municipale: 39-pm-dole}", "{police_municipale: 39-pm-dol}")
    with pytest.raises(DataError) as error:
        load_engine(data_copy)
    assert error.value.file == str(areas)
    assert error.value.line == _line_of(areas, "39-pm-dol}")
    assert "39-pm-dol" in str(error.value) and "areas.yml:" in str(error.value)


def test_dangling_departement_agency(data_copy: Path) -> None:
    areas = data_copy / "areas.yml"
    _replace(areas, "crip: 04-crip", "crip: 04-crip-inconnue")
    with pytest.raises(DataError, match="04-crip-inconnue") as error:
        load_engine(data_copy)
    assert error.value.line == _line_of(areas, "crip: 04-crip-inconnue")


def test_duplicate_rule_id(data_copy: Path) -> None:
    rules = data_copy / "rules.yml"
    _replace(rules, "  - id: autre\n", "  - id: arnaque\n")
    with pytest.raises(DataError, match="en double 'arnaque'") as error:
        load_engine(data_copy)
    assert error.value.file == str(rules)
    lines = [
        n for n, line in enumerate(rules.read_text().splitlines(), 1) if line == "  - id: arnaque"
    ]
    assert error.value.line == lines[1]


def test_duplicate_copy_id(data_copy: Path) -> None:
    rules = data_copy / "rules.yml"
    _replace(rules, "id: incivilite.force", "id: enfant-en-danger.force")
    with pytest.raises(DataError, match=r"en double 'enfant-en-danger\.force'") as error:
        load_engine(data_copy)
    assert error.value.line == _line_of(rules, "when: {offence: true}") - 1


def test_unknown_report_type_in_rules(data_copy: Path) -> None:
    rules = data_copy / "rules.yml"
    _replace(rules, "when: {report_type: autre}", "when: {report_type: cambriolage}")
    with pytest.raises(DataError, match="type de signalement inconnu 'cambriolage'") as error:
        load_engine(data_copy)
    assert error.value.file == str(rules)
    assert error.value.line == _line_of(rules, "report_type: cambriolage")


def test_unknown_referral_in_rules(data_copy: Path) -> None:
    rules = data_copy / "rules.yml"
    _replace(rules, 'referrals: ["3977"]', 'referrals: ["3978"]')
    with pytest.raises(DataError, match="renvoi inconnu '3978'") as error:
        load_engine(data_copy)
    assert error.value.line == _line_of(rules, '"3978"')


def test_unknown_condition(data_copy: Path) -> None:
    rules = data_copy / "rules.yml"
    _replace(
        rules,
        "when: {report_type: harcelement, minor: true}",
        "when: {report_type: harcelement, mineur: true}",
    )
    with pytest.raises(DataError, match="condition inconnue 'mineur'"):
        load_engine(data_copy)


def test_missing_default_rule(data_copy: Path) -> None:
    rules = data_copy / "rules.yml"
    text = rules.read_text(encoding="utf-8")
    rules.write_text(text[: text.index("  - id: default")], encoding="utf-8")
    with pytest.raises(DataError, match="règle par défaut") as error:
        load_engine(data_copy)
    assert error.value.line == _line_of(rules, "  - id: autre")


def test_duplicate_yaml_key(data_copy: Path) -> None:
    agencies = data_copy / "agencies.yml"
    _replace(
        agencies,
        "    phone: 04 92 30 07 43\n",
        "    phone: 04 92 30 07 43\n    phone: 04 00 00 00 00\n",
    )
    with pytest.raises(DataError, match="en double") as error:
        load_engine(data_copy)
    assert error.value.line == _line_of(agencies, "04 00 00 00 00")


def test_duplicate_agency_id(data_copy: Path) -> None:
    agencies = data_copy / "agencies.yml"
    _replace(agencies, "  - id: 39-pm-dole\n", "  - id: 39-pm-lons\n")
    with pytest.raises(DataError, match="id d'agence en double '39-pm-lons'") as error:
        load_engine(data_copy)
    assert (
        error.value.line
        == [
            n
            for n, line in enumerate(agencies.read_text().splitlines(), 1)
            if line == "  - id: 39-pm-lons"
        ][1]
    )


def test_agency_colliding_with_generated_unit_needs_override(data_copy: Path) -> None:
    agencies = data_copy / "agencies.yml"
    _replace(agencies, "  - id: pn-61356\n    override: true\n", "  - id: pn-61356\n")
    with pytest.raises(DataError, match="override"):
        load_engine(data_copy)


def test_agency_without_source(data_copy: Path) -> None:
    agencies = data_copy / "agencies.yml"
    text = agencies.read_text(encoding="utf-8")
    start = text.index("  - id: 04-pm-sisteron")
    source = text.index("    source:", start)
    end = text.index("\n", source)
    agencies.write_text(text[:source] + text[end + 1 :], encoding="utf-8")
    with pytest.raises(DataError, match="source manquante") as error:
        load_engine(data_copy)
    assert error.value.line == _line_of(agencies, "  - id: 04-pm-sisteron")


def test_yaml_syntax_error(data_copy: Path) -> None:
    rules = data_copy / "rules.yml"
    _replace(rules, "  - id: autre\n", "  - id: autre\n   bad: [\n")
    with pytest.raises(DataError, match="YAML invalide") as error:
        load_engine(data_copy)
    assert error.value.file == str(rules)
    assert error.value.line is not None


def test_corrupt_reference(data_copy: Path) -> None:
    (data_copy / "reference.json.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match="relancer l'import"):
        load_engine(data_copy)


def test_errors_belong_to_one_family(engine: Engine) -> None:
    with pytest.raises(UnknownReportTypeError):
        engine.decide("hors_sujet", "39013")
    with pytest.raises(UnknownCommuneError):
        engine.decide("autre", "99999")
    assert issubclass(DataError, RoutingError)
    assert issubclass(UnknownCommuneError, RoutingError)
