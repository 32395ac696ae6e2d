"""The import command rebuilds the shipped reference from CSV files (three competence formats)."""
# ruff: noqa: E501 (CSV fixtures keep their real, long header lines)

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
import yaml

import routing
from routing.cli import import_main
from routing.errors import DataError
from routing.importer import ImportSources, build_reference, write_reference
from routing.loader import load_engine

COMMUNES = """\
code_insee,nom,type,commune_parente_insee,commune_parente_nom,departement_code,departement_nom,region_code,region_nom,arrondissement_code,arrondissement_nom,zone,codes_postaux,population,siren_commune,epci_siren,epci_nom,epci_type,ept_code,ept_nom,anciens_codes
39300,Lons-le-Saunier,commune-actuelle,,,39,Jura,27,BFC,392,Lons,metro,39000,16618,1,200071116,CA,CA,,,
39013,Arbois,commune-actuelle,,,39,Jura,27,BFC,392,Lons,metro,39600,3300,1,200071116,CA,CA,,,
39470,Les Rousses,commune-actuelle,,,39,Jura,27,BFC,393,St-Claude,metro,39220,3700,1,200071116,CA,CA,,,
39478,Saint-Claude,commune-actuelle,,,39,Jura,27,BFC,393,St-Claude,metro,39200,8386,1,200026573,CC,CC,,,39125
39125,Chaumont,commune-deleguee,39478,Saint-Claude,39,Jura,27,BFC,393,St-Claude,metro,,,,200026573,CC,CC,,,
"""
DEPARTEMENTS = """\
departement_code,departement_nom,region_code,region_nom,chef_lieu_insee,chef_lieu_nom,zone
39,Jura,27,BFC,39300,Lons-le-Saunier,metro
"""
POSTAL = """\
code_postal,code_insee,nom_commune,type_commune,departement_code,libelle_acheminement,source_decoupage_administratif_6_0_0,source_codes_postaux_4_1_2,code_insee_actuel_cog2026
39000,39300,Lons-le-Saunier,commune-actuelle,39,,1,1,1
39600,39013,Arbois,commune-actuelle,39,,1,1,1
39200,39478,Saint-Claude,commune-actuelle,39,,1,1,1
39200,39125,Chaumont,commune-deleguee,39,,0,1,1
"""
UNITS = """\
institution,unite_id,unite_cu,pel_id_service,nom,adresse,code_postal,commune_acheminement,telephone,departement,unite_zpn_brut,horaires_accueil,latitude,longitude,source_fichier
GN,1,4084,3004084,Brigade de proximité d'Arbois,1 rue X 39600 ARBOIS,39600,ARBOIS,03 00 00 00 01,39,1,Lundi : 8h-12h,0,0,pwb_ref_unite_gn.csv
GN,2,4103,3004103,Brigade de proximité de Saint-Claude,2 rue Y 39200 ST CLAUDE,39200,ST CLAUDE,03 00 00 00 02,39,1,,0,0,pwb_ref_unite_gn.csv
"""
PN_SERVICES = """\
pel_id_service_pn,departement_code,nb_communes,communes_insee,communes_noms,unite_nom_si_connu,population_totale_cog2026
66163,39,1,39300,Lons-le-Saunier,,16618
"""
# Raw PEL referential: Saint-Claude only through its former code 39125; Les Rousses is split.
PEL = """\
"id_commune","id_service","competence","id_service_gn"
"39300","66163","1","3004070"
"39013","3004084","0","3004084"
"39125","3004103","0","3004103"
"39470","3004103","0","3004103"
"39470","66163","1","3004103"
"""
# The data.gouv file (header names as documented on the dataset page; matched loosely).
DATAGOUV = """\
Code commune;Libellé;Institution;id_service;Service;Code postal;Codes postaux
39300;Lons-le-Saunier;Police nationale;66163;Commissariat de Lons;39000;39000
39013;Arbois;Gendarmerie nationale;3004084;Brigade d'Arbois;39600;39600
39478;Saint-Claude;Gendarmerie nationale;3004103;Brigade de Saint-Claude;39200;39200
39470;Les Rousses;Gendarmerie nationale;3004103;Brigade de Saint-Claude;39220;39220
"""


def _sources(tmp_path: Path, force: str, force_name: str = "force.csv") -> ImportSources:
    files = {
        "communes.csv": COMMUNES,
        "departements.csv": DEPARTEMENTS,
        "postal.csv": POSTAL,
        "units.csv": UNITS,
        "pn.csv": PN_SERVICES,
        force_name: force,
    }
    for name, content in files.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    return ImportSources(
        communes=tmp_path / "communes.csv",
        postal_codes=tmp_path / "postal.csv",
        departements=tmp_path / "departements.csv",
        force=tmp_path / force_name,
        units=tmp_path / "units.csv",
        pn_services=tmp_path / "pn.csv",
    )


def test_import_from_raw_pel_referential(tmp_path: Path) -> None:
    document, report = build_reference(_sources(tmp_path, PEL))
    assert document["force"]["39300"] == "pn-66163"
    assert document["force"]["39013"] == "gn-3004084"
    assert document["force"]["39478"] == "gn-3004103"  # derived from former code 39125
    assert any("39478" in w and "déduite" in w for w in report.warnings)
    assert document["force"]["39470"] == ["gn-3004103", "pn-66163"]
    assert document["force_split"] == ["39470"]
    assert document["aliases"] == {"39125": "39478"}
    assert document["names"]["saintclaude"] == "39478"
    assert document["names_noart"] == {"rousses": "39470"}
    assert document["former_names"] == {"chaumont": "39478"}
    assert document["postal"]["39200"] == "39478"
    agencies = {a[0]: a for a in document["agencies"]}
    assert agencies["gn-3004084"][1] == "Brigade de proximité d'Arbois"
    assert agencies["gn-3004084"][5] == "03 00 00 00 01"
    # PN service known by id only: no name, main commune kept for the template.
    assert agencies["pn-66163"][1] == "" and agencies["pn-66163"][7] == "Lons-le-Saunier"


def test_import_from_datagouv_file(tmp_path: Path) -> None:
    document, _ = build_reference(_sources(tmp_path, DATAGOUV))
    assert document["force"] == {
        "39013": "gn-3004084",
        "39300": "pn-66163",
        "39470": "gn-3004103",
        "39478": "gn-3004103",
    }
    assert document["force_split"] == []


def test_import_rejects_unknown_institution(tmp_path: Path) -> None:
    bad = DATAGOUV.replace("Gendarmerie nationale;3004084", "Douane;3004084")
    with pytest.raises(DataError, match="institution 'Douane'") as error:
        build_reference(_sources(tmp_path, bad))
    assert error.value.line == 3


def test_imported_data_loads_with_the_configuration(tmp_path: Path) -> None:
    out = tmp_path / "out"
    document, report = build_reference(_sources(tmp_path, PEL))
    write_reference(document, report, out)
    for name in ("rules.yml", "helplines.yml"):
        shutil.copy(routing.DATA_DIR / name, out / name)
    agencies = yaml.safe_load((routing.DATA_DIR / "agencies.yml").read_text(encoding="utf-8"))
    agencies["agencies"] = []
    (out / "agencies.yml").write_text(yaml.safe_dump(agencies, allow_unicode=True), "utf-8")
    (out / "areas.yml").write_text("version: 1\nmairies: {departements: ['39']}\n", "utf-8")
    engine = load_engine(out)
    assert engine.resolve_commune("chaumont").candidates[0].insee == "39478"
    decision = engine.decide("vol_cambriolage", "39470")
    assert decision.needs_address and len(decision.primary) == 2
    assert engine.agency("pn-66163").name == "Police nationale — service de Lons-le-Saunier"
    assert engine.decide("autre", "39013").primary[0].agency_id == "mairie-39013"
    manifest = json.loads((out / "reference.manifest.json").read_text("utf-8"))
    assert manifest["counts"]["communes"] == 4
    assert len(manifest["inputs"]["force"]["sha256"]) == 64


def test_import_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _sources(tmp_path, DATAGOUV, force_name="force_competence_communes.csv")
    for source, target in (
        ("communes.csv", "communes_france.csv"),
        ("departements.csv", "departements.csv"),
        ("postal.csv", "postal_codes_france.csv"),
        ("units.csv", "police_gendarmerie_units.csv"),
        ("pn.csv", "pn_circonscriptions_communes.csv"),
    ):
        if source != target:
            (tmp_path / source).rename(tmp_path / target)
    out = tmp_path / "out"
    assert import_main(["--source-dir", str(tmp_path), "--output-dir", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["counts"]["communes_with_force"] == 4
    with gzip.open(out / "reference.json.gz", "rb") as handle:
        assert json.loads(handle.read())["format_version"] == 2


def test_shipped_reference_and_provenance() -> None:
    data = routing.DATA_DIR
    size = sum(p.stat().st_size for p in data.iterdir())
    assert size < 4_000_000
    provenance = (data / "PROVENANCE.md").read_text(encoding="utf-8")
    manifest = json.loads((data / "reference.manifest.json").read_text(encoding="utf-8"))
    for entry in manifest["inputs"].values():
        assert entry["file"] in provenance
        assert entry["sha256"] in provenance
