"""YAML loading that remembers the line of every mapping, for error messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from routing.errors import DataError


class LineDict(dict):  # type: ignore[type-arg]
    """A ``dict`` built from a YAML mapping, with the 1-based line where it starts."""

    line: int = 0


class LineList(list):  # type: ignore[type-arg]
    """A ``list`` built from a YAML sequence, with the 1-based line where it starts."""

    line: int = 0


_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available


class _LineLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """Safe loader whose mappings are :class:`LineDict` instances."""

    source_name: str | None = None


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise DataError(
                f"clé {key!r} en double (déjà en ligne {seen[key]})",
                file=getattr(loader, "source_name", None),
                line=key_node.start_mark.line + 1,
            )
        seen[key] = key_node.start_mark.line + 1
    mapping = LineDict(loader.construct_mapping(node, deep=True))
    mapping.line = node.start_mark.line + 1
    return mapping


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LineList:
    sequence = LineList(loader.construct_sequence(node, deep=True))
    sequence.line = node.start_mark.line + 1
    return sequence


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(path: Path) -> Any:
    """Parse a YAML file; syntax errors become :class:`DataError` with file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"lecture impossible : {exc}", file=str(path)) from exc
    loader = _LineLoader(text)
    loader.source_name = str(path)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise DataError(f"YAML invalide : {exc.problem}", file=str(path), line=line) from exc
    finally:
        loader.dispose()


def line_of(node: Any, default: int | None = None) -> int | None:
    """Line of a mapping or sequence loaded by :func:`load_yaml` (``default`` otherwise)."""
    return getattr(node, "line", default)
