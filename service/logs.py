"""Structured logging that never carries secrets.

Log calls pass facts as ``extra=`` fields. A filter drops any field whose name says it
is secret (token, code, password, secret, key material) before a handler sees it, so a
careless ``extra={"token": ...}`` cannot leak.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time

SECRET_FIELD_WORDS = ("token", "code", "password", "secret", "seed", "private", "cookie",
                      "session_id")
# Stable error codes (e.g. "digest_mismatch") are facts an operator needs, not secrets.
PUBLIC_FIELDS = frozenset({"error_code"})
_STD_ATTRS = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}
# A secret in a query string (a member's feed link: ?token=...) inside a message, such as
# an access-log line, is cut out of the message itself.
_QUERY_SECRET = re.compile(r"((?:token|code|secret|password)=)[^&\s\"']+", re.IGNORECASE)


class ScrubSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for name in list(vars(record)):
            if name in _STD_ATTRS or name in PUBLIC_FIELDS:
                continue
            if any(word in name.lower() for word in SECRET_FIELD_WORDS):
                setattr(record, name, "[redacted]")
            elif isinstance(getattr(record, name), str):
                setattr(record, name, _QUERY_SECRET.sub(r"\1[redacted]", getattr(record, name)))
        if isinstance(record.msg, str) and "=" in record.msg:
            record.msg = _QUERY_SECRET.sub(r"\1[redacted]", record.msg)
        if isinstance(getattr(record, "message", None), str):
            record.message = _QUERY_SECRET.sub(r"\1[redacted]", record.message)
        if record.args:
            try:
                formatted = record.getMessage()
            except (TypeError, ValueError):
                return True
            if _QUERY_SECRET.search(formatted):
                record.msg, record.args = _QUERY_SECRET.sub(r"\1[redacted]", formatted), ()
        return True


def _fields(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in vars(record).items() if k not in _STD_ATTRS}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(_fields(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname:<7} {record.name}: " \
               f"{record.getMessage()}"
        extra = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        text = f"{base} {extra}".rstrip()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(ScrubSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiohttp.access", "pgserver", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
