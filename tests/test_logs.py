"""Logs carry facts, never secrets."""

from __future__ import annotations

import io
import json
import logging

from service.logs import JsonFormatter, ScrubSecrets, TextFormatter


def _emit(formatter: logging.Formatter, **extra: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(ScrubSecrets())
    logger = logging.getLogger("wb.test.logs")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("something happened", extra=extra)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_secret_fields_are_redacted_and_error_codes_kept():
    line = _emit(JsonFormatter(), inbox_token="tok-123", code="482913", seed="s33d",
                 error_code="digest_mismatch", peer="hub-a")
    record = json.loads(line)
    assert record["inbox_token"] == record["code"] == record["seed"] == "[redacted]"
    assert record["error_code"] == "digest_mismatch" and record["peer"] == "hub-a"
    text = _emit(TextFormatter(), session_id="abc", password="pw")
    assert "abc" not in text and "pw" not in text
