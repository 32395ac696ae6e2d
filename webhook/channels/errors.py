"""Error answers that never fail themselves: a 422 lists what was wrong without echoing the
input (a JSON ``NaN``, a 20 kB string or a secret would otherwise be sent back — or, for NaN,
make the error handler itself fail with a 500)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


def _safe(error: Any) -> dict[str, Any]:
    if not isinstance(error, dict):
        return {"msg": "invalide"}
    return {
        "loc": [p if isinstance(p, int) else str(p)[:100] for p in error.get("loc", ())][:10],
        "msg": str(error.get("msg", "invalide"))[:300],
        "type": str(error.get("type", ""))[:60],
    }


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return JSONResponse(
        {"detail": [_safe(e) for e in errors[:20]]},
        status_code=422,
        headers={"Cache-Control": "no-store"},
    )
