"""Reading dates, answers and the OTV rules of the report forms (pure Python, no Rasa)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import routing
from actions import dates, forms

ROOT = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 7, 1)  # a Wednesday


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("demain", dt.date(2026, 7, 2)),
        ("après-demain", dt.date(2026, 7, 3)),
        ("aujourd'hui", TODAY),
        ("le 3 août", dt.date(2026, 8, 3)),
        ("le 1er aout", dt.date(2026, 8, 1)),
        ("3/8", dt.date(2026, 8, 3)),
        ("03/08/2026", dt.date(2026, 8, 3)),
        ("2026-08-03", dt.date(2026, 8, 3)),
        ("le 15 juin", dt.date(2027, 6, 15)),  # passed this year: next year
        ("la semaine prochaine", dt.date(2026, 7, 6)),  # next Monday
        ("lundi", dt.date(2026, 7, 6)),
        ("dans 10 jours", dt.date(2026, 7, 11)),
        ("dans deux semaines", dt.date(2026, 7, 15)),
        ("tomorrow", dt.date(2026, 7, 2)),
        ("August 3rd", dt.date(2026, 8, 3)),
        ("je pars le 14 juillet au matin", dt.date(2026, 7, 14)),
    ],
)
def test_parse_date(text: str, expected: dt.date) -> None:
    assert dates.parse_date(text, TODAY) == expected


@pytest.mark.parametrize("text", ["", "je ne sais pas encore", "31/02", "bientôt", "🏖️"])
def test_no_date(text: str) -> None:
    assert dates.parse_date(text, TODAY) is None


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("du 3 au 17 août", dt.date(2026, 8, 3), dt.date(2026, 8, 17)),
        ("du 03/08 au 17/08", dt.date(2026, 8, 3), dt.date(2026, 8, 17)),
        ("je pars le 3 août et je rentre le 20 août", dt.date(2026, 8, 3), dt.date(2026, 8, 20)),
        ("demain pour 2 semaines", dt.date(2026, 7, 2), dt.date(2026, 7, 16)),
        ("le 28 décembre jusqu'au 4 janvier", dt.date(2026, 12, 28), dt.date(2027, 1, 4)),
        ("le 10 août", dt.date(2026, 8, 10), None),
    ],
)
def test_parse_period(text: str, start: dt.date, end: dt.date | None) -> None:
    assert dates.parse_period(text, TODAY) == (start, end)


def test_every_report_type_has_a_form_with_the_commune() -> None:
    spec = forms.spec()
    assert set(spec.forms) == set(routing.REPORT_TYPES)
    for form in spec.forms.values():
        assert "commune" in form.slots


def test_spec_errors_are_clear() -> None:
    with pytest.raises(forms.FormSpecError, match="unknown kind"):
        forms.parse_spec({"questions": {"x": {"kind": "photo"}}, "forms": {}})
    data = yaml.safe_load(forms.FORMS_FILE.read_text(encoding="utf-8"))
    del data["forms"]["autre"]
    with pytest.raises(forms.FormSpecError, match="no form for report types"):
        forms.parse_spec(data)


@pytest.mark.parametrize(
    ("slot", "text", "expected"),
    [
        ("victime", "c'est mon fils", "enfant"),
        ("victime", "moi-même", "moi"),
        ("lieu_type", "sur snap et insta", "en_ligne"),
        ("lieu_type", "au college", "ecole"),
        ("type_arnaque", "un faux plombier est venu", "faux_artisan"),
        ("residence", "c'est ma maison de vacances", "secondaire"),
        ("lieu_vie", "elle est en maison de retraite", "ehpad"),
    ],
)
def test_read_choice(slot: str, text: str, expected: str) -> None:
    assert forms.read_choice(forms.spec().questions[slot], text) == expected


@pytest.mark.parametrize(
    ("text", "intent", "expected"),
    [
        ("oui", None, "oui"),
        ("ouais", None, "oui"),
        ("non pas du tout", None, "non"),
        ("je sais pas", None, "ne_sait_pas"),
        ("bien sûr", "affirm", "oui"),
        ("nan", "deny", "non"),
        ("peut-être", None, "ne_sait_pas"),
        ("bof", None, None),
    ],
)
def test_read_yesno(text: str, intent: str | None, expected: str | None) -> None:
    assert forms.read_yesno(text, intent) == expected


def test_read_answer_button_and_skip() -> None:
    questions = forms.spec().questions
    button = forms.read_answer(questions["victime"], "/inform", "inform", "autre", TODAY)
    assert button.value == "autre"
    skipped = forms.read_answer(questions["traces_escroc"], "", "inform", forms.SKIP, TODAY)
    assert skipped.value == forms.SKIP
    # a required question cannot be skipped
    assert forms.read_answer(questions["lieu"], "", "inform", forms.SKIP, TODAY).problem
    period = forms.read_answer(questions["date_depart"], "du 3 au 17 août", "inform", None, TODAY)
    assert period.value == "2026-08-03" and period.values == {"date_retour": "2026-08-17"}
    unknown = forms.read_answer(questions["date_retour"], "bientôt", None, None, TODAY)
    assert unknown.problem == "date"


def test_find_traces() -> None:
    text = (
        "il m'a appelé du 06 12 34 56 78, RIB FR76 3000 6000 0112 3456 7890 189, "
        "site www.faux-colis.com"
    )
    traces = forms.find_traces(text)
    assert "06 12 34 56 78" in traces
    assert any(t.startswith("FR76") for t in traces)
    assert any("faux-colis.com" in t for t in traces)


def _insee(name: str) -> str:
    return routing.get_engine().resolve_commune(name).candidates[0].insee


def test_otv_rules_police_nationale() -> None:
    dole = _insee("Dole")  # police nationale
    assert forms.force_kinds(dole) == ["police_nationale"]
    ok = forms.otv_problems(
        dole, "principale", TODAY + dt.timedelta(days=10), TODAY + dt.timedelta(days=24), TODAY
    )
    assert ok == []
    keys = [k for k, _ in forms.otv_problems(dole, "secondaire", None, None, TODAY)]
    assert keys == ["otv_residence"]
    late = forms.otv_problems(dole, "principale", TODAY + dt.timedelta(days=1), None, TODAY)
    assert [k for k, _ in late] == ["otv_too_late"]
    early = forms.otv_problems(dole, "principale", TODAY + dt.timedelta(days=60), None, TODAY)
    assert [k for k, _ in early] == ["otv_too_early"]
    short = forms.otv_problems(
        dole, "principale", TODAY + dt.timedelta(days=10), TODAY + dt.timedelta(days=11), TODAY
    )
    assert [k for k, _ in short] == ["otv_too_short"]
    long = forms.otv_problems(
        dole, "principale", TODAY + dt.timedelta(days=10), TODAY + dt.timedelta(days=200), TODAY
    )
    assert [k for k, _ in long] == ["otv_too_long"]


def test_otv_rules_gendarmerie() -> None:
    village = _insee("Arinthod")  # gendarmerie
    assert forms.force_kinds(village) == ["gendarmerie"]
    assert (
        forms.otv_problems(
            village,
            "secondaire",
            TODAY + dt.timedelta(days=1),
            TODAY + dt.timedelta(days=200),
            TODAY,
        )
        == []
    )
    late = forms.otv_problems(village, "principale", TODAY, None, TODAY)
    assert [k for k, _ in late] == ["otv_too_late"]
    past = forms.otv_problems(village, "principale", TODAY - dt.timedelta(days=1), None, TODAY)
    assert [k for k, _ in past] == ["date_past"]
    reversed_ = forms.otv_problems(
        village, None, TODAY + dt.timedelta(days=9), TODAY + dt.timedelta(days=5), TODAY
    )
    assert ("return_before_departure", {}) in reversed_


def test_otv_rules_are_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = yaml.safe_load(forms.OTV_RULES_FILE.read_text(encoding="utf-8"))
    rules["police_nationale"]["residences"] = ["principale", "secondaire"]
    changed = tmp_path / "otv_rules.yml"
    changed.write_text(yaml.safe_dump(rules), encoding="utf-8")
    monkeypatch.setattr(forms, "OTV_RULES_FILE", changed)
    forms.otv_rules.cache_clear()
    try:
        assert forms.otv_problems(_insee("Dole"), "secondaire", None, None, TODAY) == []
    finally:
        forms.otv_rules.cache_clear()


def test_ask_if_and_next_missing() -> None:
    assert forms.next_missing("harcelement", {"description": "x"}) == "victime"
    values = {"description": "x", "victime": "enfant"}
    assert "mineur" not in forms.applicable_slots("harcelement", values)
    assert forms.next_missing("harcelement", values) == "lieu_type"
    values["victime"] = "autre"
    assert forms.next_missing("harcelement", values) == "mineur"


def test_routing_flags() -> None:
    flags = forms.routing_flags("arnaque", {"argent_perdu": "oui", "victime_senior": "oui"})
    assert flags["money_lost"] and flags["senior"] and not flags["minor"]
    assert forms.routing_flags("harcelement", {"victime": "enfant", "lieu_type": "en_ligne"})[
        "online"
    ]


def test_generated_domain_and_rules_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_forms.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_button_payloads_fit_telegram_callback_data() -> None:
    generated = yaml.safe_load((ROOT / "bot" / "domain" / "forms.yml").read_text("utf-8"))
    for variants in generated["responses"].values():
        for variant in variants:
            for button in variant.get("buttons", []):
                assert len(button["payload"].encode()) <= 64, button
