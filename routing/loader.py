"""Loading and validation of the shipped data into an :class:`~routing.engine.Engine`.

Files (all under ``routing/data/`` unless another directory is given):

* ``reference.json.gz`` — communes, indexes, PN/GN competence and units (built by the import);
* ``agencies.yml`` — configured agencies (04, 39), overrides and text templates;
* ``areas.yml`` — which agency plays which role for a département or a commune;
* ``rules.yml`` — the ordered rules; ``helplines.yml`` — national numbers and services.

Every inconsistency (dangling agency id, duplicate rule id, unknown report type...) raises
:class:`~routing.errors.DataError` naming the file and, for YAML files, the line.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from routing.engine import REPORT_TYPES, Areas, Engine
from routing.errors import DataError
from routing.importer import FORMAT_VERSION, REFERENCE_FILE
from routing.models import Agency, Commune, Helpline
from routing.normalize import with_de
from routing.resolver import CommuneResolver, codes
from routing.rules import parse_rules
from routing.yamlio import line_of, load_yaml

DATA_DIR = Path(__file__).resolve().parent / "data"
AGENCY_FIELDS = (
    "name",
    "kind",
    "departement",
    "address",
    "phone",
    "email",
    "hours",
    "website",
    "notes",
    "source",
)
_COMMUNE_ROLES = ("police_municipale", "mediation", "mairie")
_DEPARTEMENT_ROLES = ("crip", "adult_cell")


def load_engine(data_dir: Path | str | None = None) -> Engine:
    """Load and validate all routing data from ``data_dir`` (default: the shipped data)."""
    directory = Path(data_dir) if data_dir is not None else DATA_DIR
    reference = _load_reference(directory / REFERENCE_FILE)
    departements = {row[0]: row[1] for row in reference["departements"]}
    communes = LazyCommunes(reference["communes"])
    helplines = _load_helplines(directory / "helplines.yml")
    rules_path = directory / "rules.yml"
    rules = parse_rules(
        load_yaml(rules_path), rules_path, report_types=REPORT_TYPES, helplines=helplines
    )
    agencies_path = directory / "agencies.yml"
    agencies_doc = load_yaml(agencies_path)
    templates = _mapping(agencies_doc, "templates", agencies_path)
    agencies = _generated_agencies(reference, templates, agencies_path)
    _configured_agencies(agencies_doc, agencies_path, agencies)
    areas = _load_areas(
        directory / "areas.yml",
        reference,
        communes,
        departements,
        templates,
        agencies_path,
        agencies,
    )
    resolver = CommuneResolver(
        communes=communes,
        aliases=reference["aliases"],
        names=reference["names"],
        names_noart=reference["names_noart"],
        former_names=reference["former_names"],
        former_names_noart=reference["former_names_noart"],
        postal=reference["postal"],
        departements=departements,
    )
    return Engine(
        communes=communes,
        aliases=reference["aliases"],
        resolver=resolver,
        agencies=agencies,
        areas=areas,
        helplines=helplines,
        rules=rules,
        departements=departements,
    )


# --------------------------------------------------------------------------- reference


class LazyCommunes(Mapping[str, Commune]):
    """Communes by INSEE code, each :class:`Commune` built on first access (fast loading)."""

    def __init__(self, rows: list[list[Any]]) -> None:
        self._rows = {row[0]: row for row in rows}
        self._built: dict[str, Commune] = {}

    def __getitem__(self, insee: str) -> Commune:
        commune = self._built.get(insee)
        if commune is None:
            row = self._rows[insee]
            commune = Commune(
                insee=row[0],
                name=row[1],
                departement=row[2],
                postal_codes=tuple(row[3].split("|")) if row[3] else (),
                population=row[4],
                epci_siren=row[5],
                kind="arrondissement" if row[6] == "a" else "commune",
                parent_insee=row[7],
            )
            self._built[insee] = commune
        return commune

    def __contains__(self, insee: object) -> bool:
        return insee in self._rows

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def departement(self, insee: str) -> str:
        return str(self._rows[insee][2])


def _load_reference(path: Path) -> dict[str, Any]:
    try:
        with gzip.open(path, "rb") as handle:
            document = json.loads(handle.read())
    except (OSError, ValueError) as exc:
        raise DataError(
            f"données de référence illisibles ({exc}) : relancer l'import", file=str(path)
        ) from exc
    if document.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"version de format {document.get('format_version')!r} inattendue "
            f"(attendu {FORMAT_VERSION}) : relancer l'import",
            file=str(path),
        )
    return dict(document)


def _mapping(node: Any, key: str, path: Path) -> Mapping[str, Any]:
    value = node.get(key) if isinstance(node, Mapping) else None
    if not isinstance(value, Mapping):
        raise DataError(
            f"section {key!r} manquante ou invalide", file=str(path), line=line_of(node, 1)
        )
    return value


def _text(node: Mapping[str, Any], key: str, path: Path) -> str:
    value = node.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise DataError(f"{key!r} doit être un texte", file=str(path), line=line_of(node))
    return str(value).strip()


# --------------------------------------------------------------------------- helplines


def _load_helplines(path: Path) -> dict[str, Helpline]:
    document = load_yaml(path)
    entries = document.get("helplines") if isinstance(document, Mapping) else None
    if not isinstance(entries, list):
        raise DataError("section 'helplines' manquante", file=str(path), line=1)
    helplines: dict[str, Helpline] = {}
    for entry in entries:
        if not isinstance(entry, Mapping) or not entry.get("id"):
            raise DataError("entrée sans id", file=str(path), line=line_of(entry))
        helpline_id = str(entry["id"])
        if helpline_id in helplines:
            raise DataError(
                f"id de numéro en double {helpline_id!r}", file=str(path), line=line_of(entry)
            )
        if not entry.get("sources"):
            raise DataError(
                f"{helpline_id!r} : sources manquantes", file=str(path), line=line_of(entry)
            )
        helplines[helpline_id] = Helpline(
            id=helpline_id,
            number=_text(entry, "number", path),
            name=_text(entry, "name", path),
            purpose=_text(entry, "purpose", path),
            availability=_text(entry, "availability", path),
            url=_text(entry, "url", path),
            channel=_text(entry, "channel", path),
            sources=tuple(str(s) for s in entry["sources"]),
        )
    return helplines


# --------------------------------------------------------------------------- agencies


def _agency(
    fields: Mapping[str, str],
    agency_id: str,
    *,
    placeholder: bool = False,
    unidentified: bool = False,
) -> Agency:
    return Agency(
        id=agency_id,
        name=fields.get("name", ""),
        kind=fields.get("kind", ""),
        departement=fields.get("departement", ""),
        address=fields.get("address", ""),
        phone=fields.get("phone", ""),
        email=fields.get("email", ""),
        hours=fields.get("hours", ""),
        website=fields.get("website", ""),
        contact_known=bool(fields.get("phone") or fields.get("email")),
        source=fields.get("source", ""),
        notes=fields.get("notes", ""),
        placeholder=placeholder,
        unidentified=unidentified,
    )


def _template(templates: Mapping[str, Any], key: str, path: Path) -> Mapping[str, str]:
    value = templates.get(key)
    if not isinstance(value, Mapping):
        raise DataError(f"modèle {key!r} manquant", file=str(path), line=line_of(templates))
    return value


def _generated_agencies(
    reference: Mapping[str, Any], templates: Mapping[str, Any], path: Path
) -> dict[str, Agency]:
    sources = _template(templates, "sources", path)
    unnamed = {
        "police_nationale": _template(templates, "police_nationale_unnamed", path),
        "gendarmerie": _template(templates, "gendarmerie_unnamed", path),
    }
    agencies: dict[str, Agency] = {}
    for agency_id, name, kind, dep, address, phone, hours, main, source in reference["agencies"]:
        fields = {
            "kind": kind,
            "departement": dep,
            "address": address,
            "phone": phone,
            "hours": hours,
            "name": name,
            "source": sources.get(source, source),
        }
        if not name:
            template = unnamed[kind]
            main = main or agency_id
            fields["name"] = template["name"].format(
                main_commune=main, de_main_commune=with_de(main)
            )
            fields["notes"] = template.get("notes", "")
        agencies[agency_id] = _agency(fields, agency_id)
    return agencies


def _configured_agencies(document: Any, path: Path, agencies: dict[str, Agency]) -> None:
    entries = document.get("agencies") if isinstance(document, Mapping) else None
    if not isinstance(entries, list):
        raise DataError("section 'agencies' manquante", file=str(path), line=1)
    configured: set[str] = set()
    allowed = set(AGENCY_FIELDS) | {"id", "override", "unidentified"}
    for entry in entries:
        line = line_of(entry)
        if not isinstance(entry, Mapping) or not isinstance(entry.get("id"), str):
            raise DataError("agence sans id", file=str(path), line=line)
        agency_id = entry["id"]
        unknown = set(entry) - allowed
        if unknown:
            raise DataError(
                f"{agency_id!r} : clé inconnue {sorted(unknown)}", file=str(path), line=line
            )
        if not _text(entry, "source", path):
            raise DataError(f"{agency_id!r} : source manquante", file=str(path), line=line)
        if agency_id in configured:
            raise DataError(f"id d'agence en double {agency_id!r}", file=str(path), line=line)
        configured.add(agency_id)
        fields = {key: _text(entry, key, path) for key in AGENCY_FIELDS if key in entry}
        if entry.get("override"):
            base = agencies.get(agency_id)
            if base is None:
                raise DataError(
                    f"{agency_id!r} : override d'une unité absente des données de référence",
                    file=str(path),
                    line=line,
                )
            merged = {k: v for k, v in base.to_dict().items() if isinstance(v, str) and v}
            merged.update({k: v for k, v in fields.items() if v})
            if "notes" not in fields:
                merged.pop("notes", None)
            agencies[agency_id] = _agency(merged, agency_id)
        else:
            if agency_id in agencies:
                raise DataError(
                    f"id d'agence {agency_id!r} déjà pris par une unité générée "
                    "(ajouter `override: true` pour la compléter)",
                    file=str(path),
                    line=line,
                )
            for key in ("name", "kind", "departement"):
                if not fields.get(key):
                    raise DataError(
                        f"{agency_id!r} : champ {key!r} obligatoire", file=str(path), line=line
                    )
            # `unidentified: true`: a service the sources did not find (to be set up by an
            # operator): never named to citizens, its reports also go to one that can receive
            agencies[agency_id] = _agency(
                fields, agency_id, unidentified=bool(entry.get("unidentified", False))
            )


# --------------------------------------------------------------------------- areas


def _load_areas(
    path: Path,
    reference: Mapping[str, Any],
    communes: LazyCommunes,
    departements: Mapping[str, str],
    templates: Mapping[str, Any],
    agencies_path: Path,
    agencies: dict[str, Agency],
) -> Areas:
    document = load_yaml(path)
    if not isinstance(document, Mapping):
        raise DataError("le fichier doit contenir un dictionnaire", file=str(path), line=1)
    sources = _template(templates, "sources", agencies_path)

    def check(agency_id: Any, node: Any, role: str) -> str:
        if not isinstance(agency_id, str) or agency_id not in agencies:
            raise DataError(
                f"agence inconnue {agency_id!r} pour le rôle {role!r}",
                file=str(path),
                line=line_of(node),
            )
        return agency_id

    departement_roles: dict[str, dict[str, str]] = {}
    configured = document.get("departements") or {}
    for dep, roles in configured.items():
        if dep not in departements:
            raise DataError(
                f"département inconnu {dep!r}", file=str(path), line=line_of(configured)
            )
        for role, agency_id in roles.items():
            if role not in _DEPARTEMENT_ROLES:
                raise DataError(
                    f"rôle départemental inconnu {role!r}", file=str(path), line=line_of(roles)
                )
            departement_roles.setdefault(dep, {})[role] = check(agency_id, roles, role)
    placeholders = _template(templates, "placeholders", agencies_path)
    for dep, dep_name in departements.items():
        for role in _DEPARTEMENT_ROLES:
            if role in departement_roles.get(dep, {}):
                continue
            template = _template(placeholders, role, agencies_path)
            agency_id = template["id"].format(dep=dep)
            if agency_id not in agencies:
                agencies[agency_id] = _agency(
                    {
                        "name": template["name"].format(dep=dep, dep_name=dep_name),
                        "kind": template["kind"],
                        "departement": dep,
                        "notes": template.get("notes", ""),
                        "source": sources["placeholder"],
                    },
                    agency_id,
                    placeholder=True,
                )
            departement_roles.setdefault(dep, {})[role] = agency_id

    commune_roles: dict[str, dict[str, str]] = {}
    mairies = document.get("mairies") or {}
    mairie_deps = set(mairies.get("departements") or [])
    for dep in mairie_deps:
        if dep not in departements:
            raise DataError(f"département inconnu {dep!r}", file=str(path), line=line_of(mairies))
    template = _template(templates, "mairie", agencies_path)
    for insee in communes:
        if communes.departement(insee) not in mairie_deps:
            continue
        commune = communes[insee]
        if commune.kind == "commune":
            agency_id = template["id"].format(insee=commune.insee)
            agencies[agency_id] = _agency(
                {
                    "name": template["name"].format(
                        commune=commune.name, de_commune=with_de(commune.name)
                    ),
                    "kind": template["kind"],
                    "departement": commune.departement,
                    "notes": template.get("notes", ""),
                    "source": sources["mairie"],
                },
                agency_id,
            )
            commune_roles[commune.insee] = {"mairie": agency_id}
    configured_communes = document.get("communes") or {}
    for insee, roles in configured_communes.items():
        if insee not in communes:
            raise DataError(
                f"commune inconnue {insee!r}",
                file=str(path),
                line=line_of(roles, line_of(configured_communes)),
            )
        for role, agency_id in roles.items():
            if role not in _COMMUNE_ROLES:
                raise DataError(
                    f"rôle communal inconnu {role!r} (attendu : {', '.join(_COMMUNE_ROLES)})",
                    file=str(path),
                    line=line_of(roles),
                )
            commune_roles.setdefault(insee, {})[role] = check(agency_id, roles, role)

    force = {insee: tuple(codes(ids)) for insee, ids in reference["force"].items()}
    for insee, ids in force.items():
        for agency_id in ids:
            if agency_id not in agencies:
                raise DataError(
                    f"commune {insee} : unité {agency_id!r} inconnue", file=REFERENCE_FILE
                )
    return Areas(
        force=force,
        split_force=frozenset(reference["force_split"]),
        multi_service=frozenset(reference["force_multi"]),
        departement_roles=departement_roles,
        commune_roles=commune_roles,
    )
