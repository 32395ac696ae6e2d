"""Rebuild the shipped reference data (``routing/data/reference.json.gz``) from CSV files.

Inputs (UTF-8 CSV with a header, as described in ``../shared/data/PROVENANCE.md``):

* the COG communes (``communes_france.csv``), départements (``departements.csv``) and postal
  codes (``postal_codes_france.csv``);
* the PN/GN competence per commune, in one of three formats, detected from the header:
  the project's joined file (``force_competence_communes.csv``), the raw PEL referential
  (``id_commune,id_service,competence,id_service_gn``) or the data.gouv file "Compétence
  territoriale gendarmerie et police nationales" (code commune, institution, id_service,
  service...);
* the units (``police_gendarmerie_units.csv``) and the PN services with their communes
  (``pn_circonscriptions_communes.csv``).

Only facts are stored; French wording (names of PN services known by id only, notes) is applied
at load time from ``agencies.yml`` so operators can change it without re-importing.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from routing.errors import DataError
from routing.normalize import fold, name_key, name_key_without_article

logger = logging.getLogger(__name__)

# 2: index values are a string (one code) or a list of codes; *_noart hold only the keys that
#    differ from the key with the article.
FORMAT_VERSION = 2
REFERENCE_FILE = "reference.json.gz"
MANIFEST_FILE = "reference.manifest.json"
PROVENANCE_FILE = "PROVENANCE.md"

CURRENT_TYPES = {"commune-actuelle": "commune", "arrondissement-municipal": "arrondissement"}
FORMER_TYPES = {"commune-deleguee", "commune-associee"}


@dataclass
class ImportSources:
    """Paths of the input files."""

    communes: Path
    postal_codes: Path
    departements: Path
    force: Path
    units: Path
    pn_services: Path | None = None

    @classmethod
    def from_dir(cls, source_dir: Path) -> ImportSources:
        return cls(
            communes=source_dir / "communes_france.csv",
            postal_codes=source_dir / "postal_codes_france.csv",
            departements=source_dir / "departements.csv",
            force=source_dir / "force_competence_communes.csv",
            units=source_dir / "police_gendarmerie_units.csv",
            pn_services=source_dir / "pn_circonscriptions_communes.csv",
        )


@dataclass
class _ForceRow:
    insee: str
    agency_id: str
    institution: str  # "PN" | "GN"
    service_id: str
    name: str = ""
    address: str = ""
    phone: str = ""
    split: bool = False
    multi: bool = False


@dataclass
class ImportReport:
    """What the import produced (also written to the manifest)."""

    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _read_csv(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a CSV file with their line number (header = line 1)."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise DataError(f"lecture impossible : {exc}", file=str(path)) from exc
    with handle:
        sample = handle.read(4096)
        handle.seek(0)
        delimiter = ";" if sample.count(";") > sample.count(",") else ","
        reader = csv.DictReader(handle, delimiter=delimiter)
        for row in reader:
            yield reader.line_num, {(k or "").strip(): (v or "").strip() for k, v in row.items()}


def _header(path: Path) -> list[str]:
    for _, row in _read_csv(path):
        return list(row)
    raise DataError("fichier vide", file=str(path))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _require(row: dict[str, str], column: str, path: Path, line: int) -> str:
    if column not in row:
        raise DataError(f"colonne {column!r} absente", file=str(path), line=line)
    return row[column]


# --------------------------------------------------------------------------- force formats


def _norm_header(name: str) -> str:
    return fold(name).replace(" ", "_")


def _read_force_project(path: Path) -> list[_ForceRow]:
    rows = []
    for line, row in _read_csv(path):
        force = _require(row, "force_competente", path, line)
        if force not in ("PN", "GN"):
            continue  # unresolved commune: no force in the data
        service = row["pel_id_service"]
        if not service:
            raise DataError("pel_id_service vide", file=str(path), line=line)
        rows.append(
            _ForceRow(
                insee=row["code_insee"],
                agency_id=f"{force.lower()}-{service}",
                institution=force,
                service_id=service,
                name=row.get("unite_competente_nom", ""),
                address=row.get("unite_competente_adresse", ""),
                phone=row.get("unite_competente_telephone", ""),
                split=row.get("competence_mixte") == "1",
                multi="services multiples" in row.get("origine_ligne", ""),
            )
        )
    return rows


def _read_force_pel(path: Path) -> list[_ForceRow]:
    rows = []
    for line, row in _read_csv(path):
        competence = _require(row, "competence", path, line)
        if competence not in ("0", "1"):
            raise DataError(f"competence {competence!r} inattendue", file=str(path), line=line)
        force = "PN" if competence == "1" else "GN"
        service = row["id_service"]
        rows.append(_ForceRow(row["id_commune"], f"{force.lower()}-{service}", force, service))
    return _mark_split(rows)


_DATAGOUV_COLUMNS = {
    "insee": ("code_commune", "code_insee", "codeinsee", "insee", "code_commune_insee"),
    "institution": ("institution", "force"),
    "service_id": ("id_service", "identifiant_service", "idservice"),
    "service": ("service", "nom_service", "libelle_service", "unite"),
}


def _read_force_datagouv(path: Path) -> list[_ForceRow]:
    """Best-effort reader for the data.gouv file (header names matched loosely)."""
    columns: dict[str, str] = {}
    for raw in _header(path):
        norm = _norm_header(raw)
        for wanted, aliases in _DATAGOUV_COLUMNS.items():
            if norm in aliases and wanted not in columns:
                columns[wanted] = raw
    missing = {"insee", "institution", "service_id"} - set(columns)
    if missing:
        raise DataError(
            f"format de compétence non reconnu (colonnes manquantes : {sorted(missing)})",
            file=str(path),
            line=1,
        )
    rows = []
    for line, row in _read_csv(path):
        institution = fold(row[columns["institution"]])
        if institution.startswith("police") or institution == "pn":
            force = "PN"
        elif institution.startswith("gend") or institution == "gn":
            force = "GN"
        else:
            raise DataError(
                f"institution {row[columns['institution']]!r} inconnue", file=str(path), line=line
            )
        service = row[columns["service_id"]]
        insee = row[columns["insee"]].zfill(5)
        rows.append(
            _ForceRow(
                insee,
                f"{force.lower()}-{service}",
                force,
                service,
                name=row.get(columns.get("service", ""), ""),
            )
        )
    return _mark_split(rows)


def _mark_split(rows: list[_ForceRow]) -> list[_ForceRow]:
    forces: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        forces[row.insee].add(row.institution)
    for row in rows:
        row.split = len(forces[row.insee]) > 1
    return rows


def read_force(path: Path) -> list[_ForceRow]:
    """Read a competence file in any supported format (detected from its header)."""
    header = {_norm_header(h) for h in _header(path)}
    if "force_competente" in header:
        return _read_force_project(path)
    if {"id_commune", "competence", "id_service"} <= header:
        return _read_force_pel(path)
    return _read_force_datagouv(path)


# --------------------------------------------------------------------------- build


def build_reference(sources: ImportSources) -> tuple[dict[str, Any], ImportReport]:
    """Build the reference document (pure function of the input files)."""
    report = ImportReport()

    departements = []
    for line, row in _read_csv(sources.departements):
        code = _require(row, "departement_code", sources.departements, line)
        departements.append([code, row["departement_nom"], row.get("chef_lieu_insee", "")])

    communes: dict[str, list[Any]] = {}
    former: list[tuple[str, str, str]] = []  # (code, name, parent)
    aliases: dict[str, str] = {}
    for line, row in _read_csv(sources.communes):
        kind = _require(row, "type", sources.communes, line)
        insee = row["code_insee"]
        if kind in CURRENT_TYPES:
            population = int(row["population"]) if row.get("population") else None
            communes[insee] = [
                insee,
                row["nom"],
                row["departement_code"],
                row.get("codes_postaux", ""),
                population,
                row.get("epci_siren") or None,
                "a" if CURRENT_TYPES[kind] == "arrondissement" else "c",
                row.get("commune_parente_insee") or None,
            ]
            for old in filter(None, row.get("anciens_codes", "").split("|")):
                aliases.setdefault(old, insee)
        elif kind in FORMER_TYPES:
            parent = row.get("commune_parente_insee", "")
            if not parent:
                raise DataError(
                    "commune déléguée/associée sans commune parente",
                    file=str(sources.communes),
                    line=line,
                )
            former.append((insee, row["nom"], parent))
        else:
            raise DataError(
                f"type de commune inconnu {kind!r}", file=str(sources.communes), line=line
            )
    for code, _, parent in former:
        aliases.setdefault(code, parent)
    aliases = {old: new for old, new in aliases.items() if old not in communes and new in communes}

    names: dict[str, list[str]] = defaultdict(list)
    names_noart: dict[str, list[str]] = defaultdict(list)
    former_names: dict[str, list[str]] = defaultdict(list)
    former_noart: dict[str, list[str]] = defaultdict(list)

    def add(index: dict[str, list[str]], key: str, insee: str) -> None:
        if key and insee not in index[key]:
            index[key].append(insee)

    for insee, name, *_ in communes.values():
        add(names, name_key(name), insee)
        if name_key_without_article(name) != name_key(name):
            add(names_noart, name_key_without_article(name), insee)
    for _, name, parent in former:
        if parent in communes:
            add(former_names, name_key(name), parent)
            if name_key_without_article(name) != name_key(name):
                add(former_noart, name_key_without_article(name), parent)

    postal: dict[str, list[str]] = defaultdict(list)
    fallback_postal: dict[str, list[str]] = defaultdict(list)
    for line, row in _read_csv(sources.postal_codes):
        code = _require(row, "code_postal", sources.postal_codes, line)
        insee = row["code_insee"]
        insee = insee if insee in communes else aliases.get(insee, "")
        if not insee:
            continue
        target = (
            postal
            if row.get("source_decoupage_administratif_6_0_0", "1") == "1"
            else (fallback_postal)
        )
        if insee not in target[code]:
            target[code].append(insee)
    for code, insees in fallback_postal.items():
        if code not in postal:  # older source only used for codes the 2026 source lacks
            postal[code] = insees
    for insee, commune in communes.items():  # postal codes listed on the commune itself
        for code in filter(None, commune[3].split("|")):
            if insee not in postal[code]:
                postal[code].append(insee)

    for code, insees in postal.items():
        parents = {communes[i][7] for i in insees if communes[i][6] == "a"}
        if parents:
            postal[code] = [i for i in insees if i not in parents]

    force_rows = read_force(sources.force)
    force: dict[str, list[str]] = defaultdict(list)
    split: set[str] = set()
    multi: set[str] = set()
    facts: dict[str, _ForceRow] = {}
    for force_row in force_rows:
        if force_row.agency_id not in force[force_row.insee]:
            force[force_row.insee].append(force_row.agency_id)
        if force_row.split:
            split.add(force_row.insee)
        if force_row.multi:
            multi.add(force_row.insee)
        if force_row.name and force_row.agency_id not in facts:
            facts[force_row.agency_id] = force_row
    # Current communes missing from the competence file: derive from their former communes.
    former_codes: dict[str, list[str]] = defaultdict(list)
    for old, new in aliases.items():
        former_codes[new].append(old)
    for insee, commune in communes.items():
        if insee in force:
            continue
        children = [c for c in communes.values() if c[7] == insee] if commune[6] == "c" else []
        origins = sorted(former_codes[insee]) + [c[0] for c in children]
        found = Counter(a for code in origins for a in force.get(code, []))
        if found:
            best = sorted(found, key=lambda a: (-found[a], a))
            force[insee] = best[:1]
            if len(found) > 1:
                multi.add(insee)
            report.warnings.append(f"{insee} {commune[1]} : force déduite des anciennes communes")
        else:
            report.warnings.append(
                f"{insee} {commune[1]} : aucune force compétente dans les données"
            )
    force = {k: v for k, v in force.items() if k in communes}

    agencies = _build_agencies(sources, force, facts, communes, report)
    for insee, ids in force.items():
        for agency_id in ids:
            if agency_id not in agencies:
                raise DataError(
                    f"commune {insee} : unité {agency_id} introuvable", file=str(sources.force)
                )

    inputs = {}
    for label, path in vars(sources).items():
        if path is not None:
            inputs[label] = {"file": path.name, "sha256": _sha256(path)}
    document: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "imported_on": date.today().isoformat(),
        "inputs": inputs,
        "departements": departements,
        "communes": sorted(communes.values()),
        "aliases": dict(sorted(aliases.items())),
        "names": _compact(names),
        "names_noart": _compact(names_noart),
        "former_names": _compact(former_names),
        "former_names_noart": _compact(former_noart),
        "postal": _compact(postal),
        "force": _compact(force),
        "force_split": sorted(split & set(communes)),
        "force_multi": sorted(multi & set(communes)),
        "agencies": [agencies[k] for k in sorted(agencies)],
    }
    report.counts = {
        "departements": len(departements),
        "communes": len(communes),
        "aliases": len(aliases),
        "postal_codes": len(postal),
        "communes_with_force": len(force),
        "split_communes": len(document["force_split"]),
        "agencies": len(agencies),
    }
    return document, report


def _build_agencies(
    sources: ImportSources,
    force: dict[str, list[str]],
    facts: dict[str, _ForceRow],
    communes: dict[str, list[Any]],
    report: ImportReport,
) -> dict[str, list[Any]]:
    """Agencies for every competent unit: [id, name, kind, dep, address, phone, hours,
    main_commune, source]."""
    used = {a for ids in force.values() for a in ids}
    units: dict[str, dict[str, str]] = {}
    for _, row in _read_csv(sources.units):
        prefix = "pn" if row["institution"] == "PN" else "gn"
        units[f"{prefix}-{row['pel_id_service']}"] = row
    members: dict[str, list[str]] = defaultdict(list)
    if sources.pn_services is not None:
        for _, row in _read_csv(sources.pn_services):
            members[f"pn-{row['pel_id_service_pn']}"] = row["communes_insee"].split("|")
    for insee, ids in force.items():
        for agency_id in ids:
            if insee not in members[agency_id]:
                members[agency_id].append(insee)

    agencies: dict[str, list[Any]] = {}
    for agency_id in sorted(used):
        kind = "police_nationale" if agency_id.startswith("pn-") else "gendarmerie"
        unit = units.get(agency_id)
        main = _main_commune(members[agency_id], communes)
        dep = communes[main][2] if main else ""
        if unit is not None:
            agencies[agency_id] = [
                agency_id,
                unit["nom"],
                kind,
                unit["departement"] or dep,
                unit["adresse"],
                unit["telephone"],
                unit["horaires_accueil"],
                "",
                "units",
            ]
        elif agency_id in facts:
            fact = facts[agency_id]
            agencies[agency_id] = [
                agency_id,
                fact.name,
                kind,
                dep,
                fact.address,
                fact.phone,
                "",
                "",
                "force",
            ]
        else:
            if kind == "gendarmerie":
                report.warnings.append(f"{agency_id} : unité de gendarmerie sans nom")
            agencies[agency_id] = [
                agency_id,
                "",
                kind,
                dep,
                "",
                "",
                "",
                communes[main][1] if main else "",
                "force",
            ]
    return agencies


def _compact(index: dict[str, list[str]]) -> dict[str, str | list[str]]:
    """Sorted index whose single-element lists are stored as plain strings (faster to load)."""
    return {k: v[0] if len(v) == 1 else v for k, v in sorted(index.items()) if v}


def _main_commune(insees: Iterable[str], communes: dict[str, list[Any]]) -> str:
    """Most populated commune of a service. A city whose arrondissements are split between
    several services (Paris, Marseille) is left out in favour of its arrondissements."""
    members = [communes[i] for i in insees if i in communes]
    codes = {m[0] for m in members}
    partial = set()
    for parent in {m[7] for m in members if m[6] == "a"}:
        children = {c[0] for c in communes.values() if c[7] == parent}
        if not children <= codes:
            partial.add(parent)
    members = [m for m in members if m[0] not in partial] or members
    if not members:
        return ""
    return str(max(members, key=lambda m: (m[4] or 0, m[0]))[0])


def write_reference(document: dict[str, Any], report: ImportReport, output_dir: Path) -> Path:
    """Write the gzipped reference and its manifest; return the reference path."""
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / REFERENCE_FILE
    payload = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    temporary = target.with_suffix(".tmp")
    with (
        temporary.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as handle,
    ):
        handle.write(payload)
    temporary.replace(target)
    manifest = {
        "format_version": document["format_version"],
        "imported_on": document["imported_on"],
        "inputs": document["inputs"],
        "counts": report.counts,
        "warnings": report.warnings,
    }
    (output_dir / MANIFEST_FILE).write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    _update_provenance(output_dir / PROVENANCE_FILE, manifest)
    return target


def _update_provenance(path: Path, manifest: dict[str, Any]) -> None:
    """Rewrite the generated section of PROVENANCE.md (if the file has the markers)."""
    if not path.exists():
        return
    text = path.read_text(encoding="utf-8")
    begin, end = "<!-- BEGIN IMPORT -->", "<!-- END IMPORT -->"
    if begin not in text or end not in text:
        return
    imported = f"Importé le {manifest['imported_on']} (format {manifest['format_version']})."
    lines = [begin, "", imported, "", "| Entrée | Fichier | SHA-256 |", "|---|---|---|"]
    lines += [
        f"| {label} | `{entry['file']}` | `{entry['sha256']}` |"
        for label, entry in manifest["inputs"].items()
    ]
    lines += [
        "",
        "Compteurs : " + ", ".join(f"{k} {v}" for k, v in manifest["counts"].items()) + ".",
        "",
    ]
    lines += [f"- Avertissement : {w}" for w in manifest["warnings"]]
    lines += ["", end]
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1]
    path.write_text(head + "\n".join(lines) + tail, encoding="utf-8")
