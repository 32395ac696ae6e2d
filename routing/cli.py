"""Command-line entry points: ``explain``, ``routing-import`` and ``bench-routing``.

Wired as ``tranquillite <subcommand>`` by ``webhook.cli`` and runnable as
``python -m routing <explain|import|bench> ...``. Each ``*_main`` returns an exit code:
0 success, 1 routing/data error, 2 usage error, 3 commune not found or ambiguous.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from routing.engine import REPORT_TYPES
from routing.errors import RoutingError

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_COMMUNE = 3


def _print_json(payload: object) -> None:
    print(json.dumps(payload, ensure_ascii=False, indent=2))


def explain_main(argv: Sequence[str] | None = None) -> int:
    """Print the routing decision for a commune and a report type as JSON."""
    parser = argparse.ArgumentParser(
        prog="tranquillite explain",
        description="Explique la décision de routage (destinataires, règles, renvois, raison).",
    )
    parser.add_argument(
        "--commune", help="nom, code postal ou code INSEE (absent : repli national)"
    )
    parser.add_argument("--type", dest="report_type", required=True, choices=REPORT_TYPES)
    for flag, text in (
        ("minor", "victime mineure"),
        ("senior", "victime âgée ou vulnérable"),
        ("danger", "danger immédiat"),
        ("offence", "infraction (menaces, dégradations...)"),
        ("online", "faits en ligne"),
        ("neighbour-conflict", "conflit de voisinage"),
        ("money-lost", "argent perdu"),
        ("repeated", "ciblé à répétition"),
    ):
        parser.add_argument(f"--{flag}", action="store_true", help=text)
    parser.add_argument("--data-dir", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        engine = _engine(args.data_dir)
        insee = None
        resolution = None
        if args.commune:
            resolution = engine.resolve_commune(args.commune)
            if resolution.status != "found":
                _print_json({"commune": resolution.to_dict(), "decision": None})
                return EXIT_COMMUNE
            insee = resolution.candidates[0].insee
        decision = engine.decide(
            args.report_type,
            insee,
            minor=args.minor,
            senior=args.senior,
            danger=args.danger,
            offence=args.offence,
            online=args.online,
            neighbour_conflict=args.neighbour_conflict,
            money_lost=args.money_lost,
            repeated=args.repeated,
        )
    except RoutingError as exc:
        print(f"erreur : {exc}", file=sys.stderr)
        return EXIT_ERROR
    payload = decision.to_dict()
    for destination in payload["destinations"]:
        agency = engine.agency(destination["agency_id"])
        destination["agency"] = agency.to_dict()
    payload["referral_details"] = [engine.helpline(r).to_dict() for r in decision.referrals]
    _print_json(
        {
            "commune": (
                {**resolution.candidates[0].to_dict(), "matched_by": resolution.matched_by[0]}
                if resolution
                else None
            ),
            "decision": payload,
        }
    )
    return EXIT_OK


def _engine(data_dir: Path | None):  # type: ignore[no-untyped-def]
    if data_dir is None:
        from routing import get_engine

        return get_engine()
    from routing.loader import load_engine

    return load_engine(data_dir)


def import_main(argv: Sequence[str] | None = None) -> int:
    """Rebuild ``routing/data/reference.json.gz`` from the official CSV files."""
    from routing.importer import ImportSources, build_reference, write_reference
    from routing.loader import DATA_DIR, load_engine

    parser = argparse.ArgumentParser(
        prog="tranquillite routing-import",
        description="Reconstruit les données de référence du routage à partir des CSV officiels.",
    )
    parser.add_argument(
        "--source-dir", type=Path, required=True, help="dossier des CSV (ex. ../shared/data)"
    )
    parser.add_argument("--output-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--communes", type=Path, help="COG : communes_france.csv")
    parser.add_argument("--postal-codes", type=Path, help="postal_codes_france.csv")
    parser.add_argument("--departements", type=Path, help="departements.csv")
    parser.add_argument(
        "--force",
        type=Path,
        help="compétence PN/GN : force_competence_communes.csv, référentiel PEL "
        "brut ou fichier data.gouv « Compétence territoriale »",
    )
    parser.add_argument("--units", type=Path, help="police_gendarmerie_units.csv")
    parser.add_argument("--pn-services", type=Path, help="pn_circonscriptions_communes.csv")
    args = parser.parse_args(argv)
    sources = ImportSources.from_dir(args.source_dir)
    for name in ("communes", "postal_codes", "departements", "force", "units", "pn_services"):
        if getattr(args, name) is not None:
            setattr(sources, name, getattr(args, name))
    if sources.pn_services is not None and not sources.pn_services.exists():
        sources.pn_services = None
    try:
        document, report = build_reference(sources)
        target = write_reference(document, report, args.output_dir)
        if (args.output_dir / "rules.yml").exists():
            load_engine(args.output_dir)  # the new data must validate against the config
    except RoutingError as exc:
        print(f"erreur : {exc}", file=sys.stderr)
        return EXIT_ERROR
    for warning in report.warnings:
        print(f"attention : {warning}", file=sys.stderr)
    _print_json({"written": str(target), "counts": report.counts})
    return EXIT_OK


def bench_main(argv: Sequence[str] | None = None) -> int:
    """Print the load time of all data and the decisions per second."""
    from routing.bench import run_bench

    parser = argparse.ArgumentParser(
        prog="tranquillite bench-routing",
        description="Mesure le temps de chargement et le débit de décisions du routage.",
    )
    parser.add_argument("--decisions", type=int, default=200_000)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        result = run_bench(args.decisions, args.data_dir)
    except RoutingError as exc:
        print(f"erreur : {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"load time (all data): {result.load_seconds * 1000:.0f} ms (target < 1000 ms)")
    print(
        f"decisions: {result.decisions} in {result.decide_seconds:.2f} s = "
        f"{result.decisions_per_second:,.0f} decisions/s (target > 50,000)"
    )
    print(f"commune resolutions: {result.resolutions_per_second:,.0f} /s")
    return EXIT_OK if result.load_seconds < 1 and result.decisions_per_second > 50_000 else 1


COMMANDS = {
    "explain": explain_main,
    "import": import_main,
    "routing-import": import_main,
    "bench": bench_main,
    "bench-routing": bench_main,
}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m routing <explain|import|bench> ...``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        print("usage : python -m routing {explain,import,bench} [options]", file=sys.stderr)
        return EXIT_USAGE
    return COMMANDS[args[0]](args[1:])
