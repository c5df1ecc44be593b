"""Settings as data: one table of name, default and meaning.

Every setting is read from the environment, then from an optional ``.env`` file in
the working directory (environment wins). ``docs/settings.md`` and ``.env.example``
are checked against this table by a test, so a setting cannot go undocumented.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str
    component: str = "node"  # node | hub | both
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting("SITE_URL", "",
            "Public base URL of the node; used in share links, bundles (Instance) and to "
            "decide whether cookies are Secure (https). Empty: http://WB_HOST:WB_PORT "
            "(127.0.0.1 when bound to all addresses)."),
    Setting("SITE_NAME", "WhiteBalloon", "Community name shown in page titles."),
    Setting("PREFERRED_HOST", "",
            "The node's one canonical address (host[:port], or a URL for another scheme). "
            "Set: invite links, QR codes and shown addresses use it, and a page asked for "
            "under another host answers 308 to it (not /healthz, /readyz, /metrics, the "
            "peer inbox or /mcp), so the session cookie exists for this host only. Behind a proxy "
            "the host is X-Forwarded-Host when WB_TRUST_PROXY is on."),
    Setting("SESSION_SECRET", "",
            "Secret used to derive CSRF tokens. Empty: a random one is generated and kept "
            "in WB_DATA_DIR/session_secret (0600).", secret=True),
    Setting("WB_DATA_DIR", "./var/node",
            "Directory for the embedded PostgreSQL, keys, uploads and bundles.", "both"),
    Setting("WB_DATABASE_URL", "",
            "PostgreSQL URL of the node. Empty: start the embedded server from pgserver "
            "under WB_DATA_DIR/pgdata.", secret=True),
    Setting("WB_HOST", "127.0.0.1", "Address `wb serve` binds to.", "both"),
    Setting("WB_PORT", "8080", "Port `wb serve` listens on."),
    Setting("WB_HEADER_TIMEOUT", "10",
            "Seconds a client has to send a complete request line and headers (from "
            "connecting, or from the first byte of a request on a kept-alive connection); "
            "a slow or stalled one is closed.", "both"),
    Setting("WB_KEEPALIVE_TIMEOUT", "15",
            "Seconds an idle kept-alive HTTP connection stays open.", "both"),
    Setting("WB_MAX_CONNECTIONS", "1000",
            "Open HTTP connections per server process. At the limit a new connection "
            "replaces the longest-waiting idle or half-sent one; when all are busy it gets "
            "503 too_many_connections (one log line when the limit is reached). Keep it "
            "below the open-file limit (ulimit -n).", "both"),
    Setting("WB_SKIN", "default",
            "The node's default skin (web_templates/static/skins/NAME.css; `wb skins list`). "
            "A member may choose another in account settings."),
    Setting("WB_PINNED_REQUESTS_LIMIT", "3",
            "How many requests admins may pin above the feed at once (pins are local; "
            "`wb pins list`)."),
    Setting("WB_MESSAGES", "false",
            "Direct messages between members (off by default): true switches on /messages "
            "for full members. Messages stay on this node (never exported, fed, published "
            "or shown to the copilot); admins read only reported ones (`wb messages "
            "reports`)."),
    Setting("WB_MESSAGES_PER_MINUTE", "20",
            "How many direct messages one member may send per minute (per node process)."),
    Setting("WB_TIME_ZONE", "UTC",
            "The community's time zone (IANA name, e.g. Europe/Berlin): recurring request "
            "templates are due at their local time of day in it. The node refuses to start "
            "with an unknown zone."),
    Setting("WB_LOG_LEVEL", "INFO", "Log level (DEBUG, INFO, WARNING, ERROR).", "both"),
    Setting("WB_LOG_FORMAT", "text", "Log format: text or json (one JSON object per line).",
            "both"),
    Setting("WB_DB_POOL_MAX", "10", "Maximum connections in the database pool.", "both"),
    Setting("WB_CACHE_ENTRIES", "1024",
            "Entries in each of the node's in-process caches (signed-in sessions, the "
            "feed's pages and their JSON, pins, tags, the approvals badge), held until a "
            "table they were read from changes (LISTEN/NOTIFY, any process); the cache of "
            "members' start pages holds ~20 kB an entry. 0: no cache.",
            "node"),
    Setting("WB_EVENT_LOOP", "auto",
            "Event loop of `wb serve` and `wb hub serve`: auto (uvloop when installed: "
            "pip install 'whiteballoon[fast]'), asyncio or uvloop.", "both"),
    Setting("WB_DB_RETRY_AFTER", "5",
            "Seconds sent in Retry-After with the 503 database_unavailable answers given "
            "while the database cannot be reached.", "both"),
    Setting("WB_MAX_BUNDLE_BYTES", "33554432",
            "Largest bundle (record, manifest, signature and key bytes) a node or hub "
            "accepts on every path: hub pushes, the node's /sync/inbox, pulls and "
            "imports. A hub peer's own limit may be lower. Set it alike on a hub and "
            "its push subscribers: a subscriber that refuses a bundle (413) keeps the "
            "subscription failing until it takes it or pulls it.", "both"),
    Setting("WB_SESSION_DAYS", "30", "Lifetime of a fully authenticated session, in days."),
    Setting("WB_AUTH_REQUEST_MINUTES", "15",
            "Lifetime of a login verification request (and its half-authenticated session)."),
    Setting("WB_CODE_MAX_ATTEMPTS", "5",
            "Wrong verification codes allowed per login request before it is locked."),
    Setting("WB_INVITER_MAY_APPROVE", "false",
            "Let whoever invited a member approve (or deny) that member's waiting sign-ins "
            "with the code, besides the member's own devices, admins and reviewers."),
    Setting("WB_LOGIN_RATE_PER_MINUTE", "10",
            "Login and code-entry attempts allowed per client address per minute."),
    Setting("WB_MAX_UPLOAD_BYTES", "2097152", "Largest accepted upload (invite photo, avatar)."),
    Setting("WB_TRUST_PROXY", "false",
            "Trust X-Forwarded-For / X-Forwarded-Proto / X-Forwarded-Host from a reverse "
            "proxy.", "both"),
    Setting("WB_METRICS_TOKEN", "",
            "Bearer token that /metrics requires (Authorization: Bearer <token>). Empty: "
            "/metrics answers only to loopback clients that did not come through a proxy.",
            "both", secret=True),
    Setting("WB_HUB_DATA_DIR", "./var/hub",
            "Hub directory for the embedded PostgreSQL and the hub key.", "hub"),
    Setting("WB_HUB_DATABASE_URL", "",
            "PostgreSQL URL of the hub. Empty: embedded server under WB_HUB_DATA_DIR/pgdata.",
            "hub", secret=True),
    Setting("WB_HUB_PORT", "8090", "Port `wb hub serve` listens on.", "hub"),
    Setting("WB_HUB_URL", "http://127.0.0.1:8090", "Public base URL of the hub.", "hub"),
    Setting("WB_HUB_RATE_PER_MINUTE", "600",
            "Pushes allowed per peer per minute, per hub process.", "hub"),
    Setting("WB_HUB_PAGE_LIMIT", "500", "Largest ?limit= of the hub's bundle listing.", "hub"),
    Setting("WB_HUB_STREAM_MAX_LAG", "1000",
            "Log entries a live stream subscriber may fall behind, while frames already sent "
            "to it wait unread in the hub's buffer, before it is cut off (it gets a frame "
            "naming its cursor); a subscriber that reads what it is sent is never cut off "
            "for lag.", "hub"),
    Setting("WB_HUB_STREAM_SEND_TIMEOUT", "10",
            "Seconds one stream frame may take to drain before the subscriber is cut off.",
            "hub"),
    Setting("WB_HUB_STREAM_BATCH_MS", "50",
            "Under a stream of pushes, live stream subscribers are woken at most once per "
            "this many milliseconds and get every frame logged meanwhile in one write; a "
            "push after a quiet spell wakes them at once. 0: wake on every log entry.",
            "hub"),
    Setting("WB_HUB_STREAM_CACHE_ENTRIES", "4096",
            "Recent log frames each hub process keeps in memory for its stream subscribers "
            "(a subscriber further behind reads from the log).",
            "hub"),
    Setting("WB_HUB_STREAM_CACHE_BYTES", "33554432",
            "Most bytes of frames the stream cache holds per hub process (the oldest go "
            "first; a larger frame is read from the log for each subscriber).", "hub"),
    Setting("WB_HUB_HOP_LIMIT", "8",
            "Hubs a bundle may cross before this hub stops forwarding it.", "hub"),
    Setting("WB_HUB_DELIVERY", "true",
            "Run the push-delivery worker in this hub process.", "hub"),
    Setting("WB_HUB_FOLLOW", "true",
            "Follow the upstream hubs registered with `wb hub upstreams add`.", "hub"),
    Setting("WB_HUB_DELIVERY_BATCH", "50",
            "Log entries the delivery worker reads per database query (each bundle is still "
            "sent in its own POST); the subscriber's cursor is saved after each batch.", "hub"),
    Setting("WB_HUB_DELIVERY_CONCURRENCY", "8",
            "Push subscriptions delivered at once per hub process.", "hub"),
    Setting("WB_HUB_DELIVERY_TIMEOUT", "15",
            "Seconds one POST to a subscriber's inbox may take.", "hub"),
    Setting("WB_HUB_BACKOFF_BASE", "1",
            "First retry delay (seconds) after a failed delivery; doubles per failure, "
            "with jitter.", "hub"),
    Setting("WB_HUB_BACKOFF_MAX", "600", "Longest retry delay (seconds) of a delivery.",
            "hub"),
    Setting("WB_HUB_CIRCUIT_FAILURES", "5",
            "Consecutive delivery failures after which a subscriber is paused "
            "(circuit breaker).", "hub"),
    Setting("WB_HUB_CIRCUIT_PAUSE", "300",
            "Seconds a subscriber with an open circuit is left alone.", "hub"),
    Setting("WB_HUB_ADMIN_SESSION_HOURS", "12", "Lifetime of a hub dashboard session.",
            "hub"),
    Setting("WB_HUB_FEED_PAGE_SIZE", "20", "Requests per page of the hub's public feed.",
            "hub"),
    Setting("WB_HUB_VERIFY_PROCESSES", "2",
            "Processes that verify and store pushed bundles, three database connections "
            "each (0: verified in threads, stored by the hub process), per worker.", "hub"),
    Setting("WB_HUB_WORKERS", "1",
            "Serving processes of `wb hub serve`, all accepting on the one port (one core "
            "each; docs/scaling.md). Each has its own database pools, stream caches, "
            "verification processes and rate-limit counts. With more than one and no "
            "WB_HUB_DATABASE_URL, the embedded PostgreSQL is started once for all.", "hub"),
    Setting("WB_HUB_READ_DEFER_MS", "100",
            "While peers' pushes are being handled, anonymous public reads (records API, "
            "feed page, Atom feeds) wait until none is, for at most this long: pushes "
            "keep their share of the CPU under a reader that asks as fast as it is "
            "answered (hub.priority). The reads waiting together go on together, so "
            "they share one records query. 0: never wait.", "hub"),
    Setting("WB_HUB_INLINE_VERIFY_BYTES", "32768",
            "CBOR pushes up to this size are verified in the hub's event loop itself (under "
            "a millisecond) and stored by it: handing a small bundle to an ingest process "
            "or thread cost the hub more than verifying it. 0: always hand it over.", "hub"),
    Setting("WB_HUB_READ_POOL_MAX", "4",
            "Database connections per hub process for public reads (records API, stream "
            "catch-up), apart from the `WB_DB_POOL_MAX` pool that ingest uses.", "hub"),
    Setting("WB_HUB_API_CACHE_ENTRIES", "256",
            "Public records API answers cached per hub process until the next ingest "
            "(0: no cache).", "hub"),
    Setting("WB_HUB_API_CACHE_SECONDS", "5",
            "Longest a cached public API answer is served.", "hub"),
    Setting("WB_HUB_MALLOC_TRIM_INTERVAL", "60",
            "Seconds between returns of the C heap's free pages to the operating system "
            "(glibc `malloc_trim`; without it RSS kept growing by free heap memory under "
            "steady load). 0: never.", "hub"),
    Setting("WB_HUB_RETENTION_DAYS", "30",
            "Days the hub keeps log entries and their bundles (the latest bundle of each "
            "origin is always kept); older cursors get 410 outdated_cursor. 0: keep "
            "forever.", "hub"),
    Setting("WB_HUB_PRUNE_INTERVAL", "3600",
            "Seconds between prune runs inside `wb hub serve` (0: never; "
            "`wb hub prune` runs one by hand).", "hub"),
    Setting("WB_HUB_CHECKPOINT_INTERVAL", "2",
            "Seconds between signed transparency-log checkpoints while the log grows "
            "(0: only on request). See docs/transparency.md.", "hub"),
    Setting("WB_HUB_LOG_KEY", "",
            "Ed25519 key file (0600) that signs the hub's log checkpoints. Empty: "
            "WB_HUB_DATA_DIR/log.key, created on first start. Every process of one hub "
            "must use the same key.", "hub"),
    Setting("WB_HUB_LOG_ORIGIN", "",
            "Origin line (and key name) of the hub's checkpoints. Empty: WB_HUB_URL without "
            "its scheme, plus /log (hub.example.org/log).", "hub"),
    Setting("WB_HUB_WITNESS_LOGS", "",
            "Note verifier keys (name+hash+key, comma-separated) of other hubs' logs this hub "
            "witnesses: it cosigns their checkpoints at POST /tlog/witness/add-checkpoint "
            "after checking consistency. Empty: not a witness.", "hub"),
    Setting("WB_HUB_WITNESSES", "",
            "Base URLs (comma-separated) of hubs that witness this hub's log; each new "
            "checkpoint is sent to them and served with their cosignatures.", "hub"),
    Setting("WB_HUB_WITNESS_RATE_PER_MINUTE", "60",
            "Cosigning requests (POST /tlog/witness/add-checkpoint) a witness hub accepts "
            "per client address per minute, per hub process; more get 429 (0: no limit).",
            "hub"),
    Setting("WB_HUB_V1_AUTO_REGISTER", "false",
            "Let an unknown peer of the original (v1) API register itself with its first "
            "push or pull (bearer token and X-WB-Public-Key). It waits as `pending`: its "
            "bundles are parked until the admin approves its key (`wb hub keys approve`).",
            "hub"),
    Setting("WB_TEMPLATE_RELOAD", "false",
            "Re-read templates from disk when they change (for template development)."),
    Setting("WB_SCHEDULER", "true",
            "Run scheduled jobs (sync with peers, housekeeping) inside the node process. "
            "Turn off only when another process runs them (`wb jobs run`)."),
    Setting("WB_PUBLISH_DELAY", "120",
            "Grace period in seconds: a public change (new public record, scope change to "
            "public, edit of a public record) waits this long before it is exported, so "
            "its author or an admin can undo it. Withdrawals and tombstones never wait. "
            "0: export at once."),
    Setting("SYNC_PUBLIC_SCOPE", "members",
            "Who may let data leave the node: members (a member marks their own records "
            "public), admins (a member's \"make public\" waits for an admin's approval on "
            "/sync/review) or off (nothing is public; what was leaves as a tombstone). "
            "This is the node's initial mode: an admin may switch the mode in force on "
            "/sync/review, and that choice stays until this setting changes. Every change "
            "is audited."),
    Setting("WB_SYNC_INTERVAL", "60", "Seconds between scheduled push/pull runs per peer."),
    Setting("WB_SYNC_AUDIT_DELAY", "300",
            "Seconds a hub has to include an acknowledged push in a signed checkpoint before "
            "the hub audit records an omission (docs/transparency.md)."),
    Setting("WB_SYNC_WITNESSES", "",
            "Witness cosignature keys (name+hash+key, comma-separated) the hub audit "
            "accepts; see WB_SYNC_WITNESS_QUORUM."),
    Setting("WB_SYNC_WITNESS_QUORUM", "0",
            "Cosignatures from WB_SYNC_WITNESSES a hub checkpoint needs before the hub "
            "audit trusts it (0: the hub's own signature suffices)."),
    Setting("WB_SYNC_GOSSIP_INTERVAL", "300",
            "Seconds between checkpoint gossip rounds: the node asks other nodes for the "
            "newest signed checkpoint they hold of each hub and checks it against its own "
            "(a split view becomes a fork incident). 0: no gossip (GET /sync/checkpoints "
            "answers 404). See docs/transparency.md."),
    Setting("WB_SYNC_GOSSIP_PEERS", "",
            "Base URLs (comma-separated) of nodes to exchange hub checkpoints with, asked "
            "before the instances of the origins this node trusts (16 nodes per round)."),
    Setting("ENABLE_COPILOT", "false",
            "Allow the copilot to be switched on by an admin (off unless set)."),
    Setting("DEDALUS_API_KEY", "",
            "Bearer key of the copilot's chat-completions gateway. A key an admin enters and "
            "verifies on /admin/dedalus takes precedence.", secret=True),
    Setting("COPILOT_GATEWAY_URL", "",
            "Base URL of the copilot's OpenAI-compatible gateway, e.g. https://host/v1 "
            "(the node calls {url}/chat/completions and {url}/models). Empty: no chat."),
    Setting("COPILOT_MODEL", "openai/gpt-4o-mini", "Model name sent to the copilot gateway."),
    Setting("COPILOT_SHARE_PRIVATE", "false",
            "Send the titles of private requests to the copilot's gateway (scrubbed of "
            "contact details). Off: private records reach the gateway only as IDs and "
            "counts. Shown as a warning on /admin/dedalus and recorded in the audit."),
    Setting("COPILOT_RATE_PER_MINUTE", "30",
            "Copilot chat turns and tool calls allowed per admin per minute (web and MCP)."),
    Setting("WB_SMTP_URL", "",
            "Mail relay: smtp://host:587 (STARTTLS when the relay offers it) or "
            "smtps://host:465 (TLS from the start); user:password@ in the URL or the two "
            "settings below. Empty: no e-mail is sent, and admin pages say so.", secret=True),
    Setting("WB_SMTP_USERNAME", "", "Relay login name (when not in WB_SMTP_URL).",
            secret=True),
    Setting("WB_SMTP_PASSWORD", "", "Relay password (when not in WB_SMTP_URL).", secret=True),
    Setting("WB_SMTP_TIMEOUT", "30", "Seconds one relay conversation may take."),
    Setting("WB_MAIL_FROM", "",
            "From address of notifications, e.g. WhiteBalloon <noreply@example.org>. "
            "Empty: noreply@ the host of SITE_URL."),
    Setting("WB_MAIL_PER_MINUTE", "30", "Messages the node hands to the relay per minute."),
    Setting("WB_MAIL_MAX_ATTEMPTS", "8",
            "Failed attempts after which a message is dropped (the reason stays visible in "
            "`wb mail status` and on the admin page). Retries back off from 30 s, doubling, "
            "to 1 h."),
    Setting("WB_MAIL_INTERVAL", "15", "Seconds between runs of the outbox job."),
    Setting("WB_MAIL_CONFIRM_HOURS", "48",
            "Lifetime of the link that confirms a member's notification address."),
)

BY_NAME: Mapping[str, Setting] = {s.name: s for s in SETTINGS}

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


def read_dotenv(path: Path) -> dict[str, str]:
    """The ``NAME=value`` pairs of a ``.env`` file, parsed by python-dotenv (quotes,
    ``export``, comments), without variable expansion: a ``$`` in a secret stays a ``$``."""
    if not path.is_file():
        return {}
    return {name: value for name, value in dotenv_values(path, interpolate=False).items()
            if value is not None}


#: Old setting names still read (when the new name is not set) so that an upgrade does
#: not silently drop an operator's value: old name -> new name.
RENAMED: dict[str, str] = {"WB_HUB_MAX_BUNDLE_BYTES": "WB_MAX_BUNDLE_BYTES"}


class Config:
    """Resolved settings: explicit overrides, then environment, then ``.env``, then defaults."""

    def __init__(self, overrides: Mapping[str, str] | None = None,
                 *, environ: Mapping[str, str] | None = None, dotenv: Path | None = None):
        env = os.environ if environ is None else environ
        file_values = read_dotenv(dotenv if dotenv is not None else Path(".env"))
        self._values: dict[str, str] = {}
        old_names = {new: old for old, new in RENAMED.items()}
        for s in SETTINGS:
            value = s.default
            old = old_names.get(s.name)
            for source in (file_values, env):
                if old is not None and old in source and s.name not in source:
                    value = source[old]
                if s.name in source:
                    value = source[s.name]
            self._values[s.name] = value
        for name, value in (overrides or {}).items():
            if name not in BY_NAME:
                raise KeyError(f"unknown setting {name}")
            self._values[name] = str(value)

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def get_int(self, name: str) -> int:
        try:
            return int(self._values[name])
        except ValueError as exc:
            raise ValueError(f"setting {name} must be an integer, got "
                             f"{self._values[name]!r}") from exc

    def get_bool(self, name: str) -> bool:
        return self._values[name].strip().lower() in TRUE_WORDS

    def path(self, name: str) -> Path:
        return Path(self._values[name]).expanduser().resolve()

    def public(self) -> dict[str, str]:
        """Values safe to print: secrets are masked."""
        return {n: ("***" if BY_NAME[n].secret and v else v) for n, v in self._values.items()}

    @property
    def site_url(self) -> str:
        explicit = self._values["SITE_URL"].strip().rstrip("/")
        if explicit:
            return explicit
        host = self._values["WB_HOST"]
        host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # noqa: S104
        return f"http://{host}:{self._values['WB_PORT']}"

    @property
    def https(self) -> bool:
        return self.site_url.startswith("https://")
