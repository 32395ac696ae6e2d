"""Write webhook/agency/epci_names.csv (SIREN, name and kind of every EPCI à fiscalité
propre) from the shared reference file epci_france.csv (DGCL 2026 list through
@etalab/decoupage-administratif 6.0.0, Licence Ouverte; see ../shared/data/PROVENANCE.md).

The routing data give each commune its EPCI's SIREN but not the EPCI's name; the cellule de veille
needs the name to show an EPCI (CISPD) territory.

    .venv/bin/python scripts/gen_epci_names.py [path/to/epci_france.csv]
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "epci_france.csv"
TARGET = ROOT / "webhook" / "agency" / "epci_names.csv"


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else DEFAULT_SOURCE
    with source.open(encoding="utf-8", newline="") as handle:
        rows = sorted(
            (row["epci_siren"], row["epci_nom"], row["epci_type"]) for row in csv.DictReader(handle)
        )
    with TARGET.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["epci_siren", "epci_nom", "epci_type"])
        writer.writerows(rows)
    print(f"{TARGET}: {len(rows)} EPCI")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
