"""Secrets never reach the logs: a logging filter that replaces credential values with ``***``.

Installed on every root handler by ``stratforge trader run`` before anything else runs, so records
from every library (including tracebacks) pass through it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping

SECRET_ENV_NAMES = (
    "POLYMARKET_PRIVATE_KEY",
    "POLYMARKET_FUNDER_ADDRESS",
    "POLY_API_KEY",
    "POLY_API_SECRET",
    "POLY_API_PASSPHRASE",
    "DISCORD_WEBHOOK_URL",
    "DATABASE_URL",
)


class RedactSecrets(logging.Filter):
    """Replaces credential values (and URL passwords) in log records with ``***``."""

    def __init__(self, env: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> None:
        super().__init__()
        env = os.environ if env is None else env
        values = {env[k] for k in SECRET_ENV_NAMES if env.get(k)} | {v for v in extra if v}
        # Also the password part of URLs such as postgresql://user:pass@host/db
        for v in list(values):
            m = re.match(r"^[a-z+]+://[^:/@]+:([^@]+)@", v)
            if m:
                values.add(m.group(1))
        self.secrets = sorted((v for v in values if len(v) >= 4), key=len, reverse=True)

    def redact(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = self.redact(record.getMessage())
            record.args = None
            if record.exc_info and not record.exc_text:
                record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            elif record.exc_text:
                record.exc_text = self.redact(record.exc_text)
        return True


def install_redaction(env: Mapping[str, str] | None = None) -> RedactSecrets:
    """Attach the filter to every root handler (filters on loggers do not see propagated records)."""
    filt = RedactSecrets(env)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in root.handlers:
        handler.addFilter(filt)
    return filt
