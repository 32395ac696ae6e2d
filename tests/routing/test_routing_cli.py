"""Command-line entry points: explain, bench, and ``python -m routing``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from routing.bench import run_bench
from routing.cli import bench_main, explain_main, main

ROOT = Path(__file__).resolve().parents[2]


def test_explain_prints_the_decision(capsys: pytest.CaptureFixture[str]) -> None:
    code = explain_main(["--commune", "Lons le saunier", "--type", "vol_cambriolage", "--danger"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["commune"]["insee"] == "39300"
    assert payload["commune"]["matched_by"] == "name"
    decision = payload["decision"]
    assert decision["destinations"][0]["agency_id"] == "pn-66163"
    assert decision["destinations"][0]["rule_id"] == "vol-cambriolage-drogue"
    assert decision["destinations"][0]["agency"]["address"].startswith("6, avenue du 44e")
    assert decision["rule_ids"] == ["danger-immediat", "vol-cambriolage-drogue"]
    assert decision["referrals"] == ["17", "112", "pre-plainte"]
    assert [r["number"] for r in decision["referral_details"][:2]] == ["17", "112"]
    assert "Commissariat de police de Lons-le-Saunier" in decision["reason"]


@pytest.mark.parametrize(
    ("argv", "rule_ids"),
    [
        (
            ["--commune", "04100", "--type", "personne_vulnerable", "--senior"],
            ["personne-vulnerable"],
        ),
        (["--commune", "39478", "--type", "harcelement", "--minor"], ["harcelement-mineur"]),
        (["--type", "arnaque", "--senior"], ["arnaque", "repli-national"]),
    ],
    ids=["postal-code", "insee", "no-commune"],
)
def test_explain_variants(
    capsys: pytest.CaptureFixture[str], argv: list[str], rule_ids: list[str]
) -> None:
    assert explain_main(argv) == 0
    assert json.loads(capsys.readouterr().out)["decision"]["rule_ids"] == rule_ids


def test_explain_ambiguous_commune_lists_candidates(capsys: pytest.CaptureFixture[str]) -> None:
    assert explain_main(["--commune", "St Claude", "--type", "autre"]) == 3
    payload = json.loads(capsys.readouterr().out)
    assert payload["decision"] is None
    assert payload["commune"]["status"] == "ambiguous"
    assert {c["insee"] for c in payload["commune"]["candidates"]} == {"39478", "97124"}


def test_explain_rejects_unknown_type(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        explain_main(["--commune", "Dole", "--type", "cambriolage"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_python_dash_m_routing_explain() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "routing",
            "explain",
            "--commune",
            "Perrigny (39)",
            "--type",
            "absence_vacances",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    decision = json.loads(result.stdout)["decision"]
    assert decision["destinations"][0]["agency_id"] == "pn-66163"
    assert "3 à 45 jours" in decision["reason"]


def test_main_without_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage" in capsys.readouterr().err


def test_bench(capsys: pytest.CaptureFixture[str]) -> None:
    bench_main(["--decisions", "20000"])
    out = capsys.readouterr().out
    assert "load time (all data):" in out and "decisions/s" in out
    result = run_bench(decisions=20_000)
    assert result.decisions == 20_000
    # Loose sanity bounds (the machine is shared); the real targets are printed by the command.
    assert 0 < result.load_seconds < 5
    assert result.decisions_per_second > 5_000
