"""The hub log's signing key and names (shared by :mod:`hub.tlog` and :mod:`hub.witness`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from keys import KeyFileError, generate_keypair, load_signing_key
from protocol import tlog as L
from service.settings import Config

log = logging.getLogger("wb.hub.tlog")


@dataclass(frozen=True)
class LogSigner:
    origin: str
    seed: bytes
    public_key: bytes

    @property
    def verifier(self) -> L.NoteVerifier:
        return L.verifier_for(self.origin, self.public_key)

    def sign(self, size: int, root: bytes) -> bytes:
        body = L.Checkpoint(self.origin, size, root).body()
        return L.Note(body, (L.sign_note(body, self.origin, self.seed),)).encode()


def log_origin(config: Config) -> str:
    """``WB_HUB_LOG_ORIGIN``, else the hub URL without its scheme (``hub.example/log``)."""
    explicit = config["WB_HUB_LOG_ORIGIN"].strip()
    if explicit:
        return explicit
    parts = urlsplit(config["WB_HUB_URL"])
    return f"{parts.netloc}{parts.path.rstrip('/')}/log"


def signer_from_config(config: Config) -> LogSigner:
    raw = config["WB_HUB_LOG_KEY"].strip()
    path = Path(raw) if raw else config.path("WB_HUB_DATA_DIR") / "log.key"
    try:
        pair = load_signing_key(path)
    except KeyFileError as exc:
        if exc.code != "key_not_found" or raw:
            raise
        try:
            pair = generate_keypair(path)
        except KeyFileError as race:  # another process of this hub created it first
            if race.code != "key_exists":
                raise
            pair = load_signing_key(path)
        else:
            log.info("transparency log key created", extra={"path": str(path)})
    return LogSigner(log_origin(config), pair.seed, pair.public_key)


signer_key = web.AppKey("tlog_signer", LogSigner)
