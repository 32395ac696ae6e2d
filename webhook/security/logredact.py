"""Secrets never reach a log: query-string values that are credentials or identifiers are masked
in access-log lines.

Open311 clients must be allowed to send ``api_key`` in the query string (the GeoReport standard),
and a reverse proxy or ``uvicorn --access-log`` writes request lines to logs. The gateway is run
without uvicorn's access log, but whoever turns it on still gets no key: this filter rewrites
the path of every ``uvicorn.access`` record before it is formatted.
"""

from __future__ import annotations

import logging
import re

SECRET_PARAMETERS = ("api_key", "token", "sender", "tracking_code", "code", "key", "proof")
_QUERY_RE = re.compile(
    r"(?P<name>(?:^|[?&;])(?:" + "|".join(SECRET_PARAMETERS) + r"))=(?P<value>[^&;#\s]*)",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    return _QUERY_RE.sub(lambda m: f"{m.group('name')}=[masqué]", text)


class RedactQuery(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install(logger_name: str = "uvicorn.access") -> None:
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactQuery) for f in logger.filters):
        logger.addFilter(RedactQuery())
