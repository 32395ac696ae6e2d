"""HTTP client of the Rasa server's REST channel."""

from __future__ import annotations

import logging
from typing import Any

import httpx

logger = logging.getLogger(__name__)


class RasaUnavailable(Exception):
    """Rasa did not answer (down, slow or erroring)."""


class RasaClient:
    def __init__(self, base_url: str, timeout: float) -> None:
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout)

    async def send(
        self, sender: str, message: str, metadata: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        try:
            response = await self._client.post(
                "/webhooks/rest/webhook",
                json={"sender": sender, "message": message, "metadata": metadata or {}},
            )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            logger.warning("Rasa REST channel failed: %s", type(exc).__name__)
            raise RasaUnavailable(type(exc).__name__) from exc
        data = response.json()
        if not isinstance(data, list):
            raise RasaUnavailable("unexpected payload")
        return data

    async def is_ready(self) -> bool:
        try:
            response = await self._client.get("/")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def aclose(self) -> None:
        await self._client.aclose()
