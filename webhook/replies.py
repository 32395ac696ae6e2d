"""Channel-neutral reply model (text + buttons) and the gateway's own messages."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field


class Button(BaseModel):
    title: str
    payload: str


class Reply(BaseModel):
    text: str = ""
    buttons: list[Button] = Field(default_factory=list)


@lru_cache(maxsize=1)
def _messages() -> dict[str, dict[str, str]]:
    with (Path(__file__).parent / "messages.yml").open(encoding="utf-8") as fh:
        data: dict[str, dict[str, str]] = yaml.safe_load(fh)
    return data


def message(key: str, language: str = "fr", **values: Any) -> str:
    table = _messages().get(language) or _messages()["fr"]
    template = table.get(key) or _messages()["fr"][key]
    return template.format(**values)


def from_rasa(items: list[dict[str, Any]]) -> list[Reply]:
    """Convert Rasa REST channel output into replies (text and buttons only)."""
    replies: list[Reply] = []
    for item in items:
        text = item.get("text") or ""
        buttons = [
            Button(title=str(b.get("title", "")), payload=str(b.get("payload", "")))
            for b in item.get("buttons") or []
            if b.get("payload")
        ]
        if text or buttons:
            replies.append(Reply(text=text, buttons=buttons))
    return replies
