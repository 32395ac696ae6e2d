"""What every request goes through before a route sees it (installed by ``create_app``): body
limits per route, read before any parsing (:mod:`webhook.security.bodylimit`); the client's
address, believed from ``X-Forwarded-For`` only behind the operator's trusted proxies
(:mod:`webhook.security.clients`); error answers that never echo the input; access-log lines
without secrets (:mod:`webhook.security.logredact`)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from webhook.channels import errors, web
from webhook.config import Settings
from webhook.security import bodylimit, clients, logredact
from webhook.security.bodylimit import KIB, Rule

# Largest body each route family accepts. The chat's is a 2,000-character message with JSON
# escapes; the internal API's a full report with every field at its limit.
BODY_LIMITS = (
    Rule(web.CHAT_PATH, 32 * KIB),
    Rule("/api/v1/notifications", 4 * KIB),
    Rule("/api/v1/tracking", 1 * KIB),
    Rule("/api/v1/agency/", 32 * KIB),
    Rule("/open311/", 64 * KIB),
    Rule("/agence", 64 * KIB),
    Rule("/internal/", 256 * KIB),
    Rule("/telegram/", 1024 * KIB),
)
DEFAULT_BODY_LIMIT = 16 * KIB


def install(app: FastAPI, settings: Settings) -> None:
    app.state.client_resolver = clients.ClientResolver(
        clients.parse_networks(settings.limits.trusted_proxies)
    )
    app.add_exception_handler(RequestValidationError, errors.validation_error_handler)
    app.add_exception_handler(413, bodylimit.too_large_handler)
    # last added, so outermost of our middleware: nothing reads a body before the limit
    app.add_middleware(bodylimit.BodyLimit, rules=BODY_LIMITS, default_bytes=DEFAULT_BODY_LIMIT)
    logredact.install()
