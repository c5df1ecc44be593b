"""The copilot's tools: deterministic admin workflows, useful without any AI.

Every tool is a plain async function over the node's own services (requests, auth,
sync); the web assistant, the MCP server and the CLI all run tools through
``run_tool``, which validates arguments, applies the per-admin rate limit and writes
one ``copilot_audit`` row with scrubbed arguments and result summary.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from node.canonical import link_base
from node.copilot import queries as Q
from node.errors import AppError
from node.i18n import plural
from service.settings import Config

log = logging.getLogger("wb.node.copilot")

# --------------------------------------------------------------------------- scrubbing

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# A run of 7-15 digits with the usual separators, optionally with a leading +.
PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d ().-]{5,18}\d(?![\w])")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[ T]\d{2}(?::\d{2})*)?$")
TOKEN = re.compile(r"(?i)\b(?:bearer|token|key|authorization)[\s:=]+[^\s,;\"']{16,}"
                   r"|\bsk-[A-Za-z0-9_-]{8,}"
                   r"|/register/[A-Za-z0-9_-]{8,}"
                   r"|[A-Za-z0-9_-]{32,}")


# Street addresses: a house number, one to three capitalised words and a street word
# ("415 Elm Street", "12b Old Mill Rd."), a lower-case name only with a long street
# word ("7 elm street"), the continental order ("Hauptstraße 5", "Rue Cler 12" is not
# matched) and post-office boxes. pyap and usaddress need a whole postal address with
# city and postcode; members write "drop it at 12 Elm St", so a small pattern serves.
_STREET = (r"(?:Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Drive|Dr|Boulevard|Blvd|Way|Court|Ct"
           r"|Place|Pl|Terrace|Close|Crescent|Square|Sq|Highway|Hwy|Parkway|Pkwy)")
ADDRESS = re.compile(
    r"\b\d{1,5}[A-Za-z]?,?\s+(?:[A-Z][\w'’-]*\.?\s+){1,3}" + _STREET + r"\b\.?"
    r"(?:,?\s+(?:Apt|Unit|Suite|Flat|#)\.?\s*\w+)?"
    r"|(?i:\b\d{1,5}[a-z]?\s+(?:[a-z][\w'’-]*\s+){1,2}(?:street|avenue|boulevard)\b)"
    r"|\b[A-ZÄÖÜ][\wäöüß-]*(?:straße|strasse|str\.|weg|gasse|platz|allee)\s+\d{1,4}[a-z]?\b"
    r"|(?i:\bP\.?\s?O\.?\s+Box\s+\d+)")


def find_addresses(text: str) -> list[str]:
    return [m.group(0) for m in ADDRESS.finditer(text or "")]


def _phone_like(text: str) -> bool:
    digits = sum(ch.isdigit() for ch in text)
    return 7 <= digits <= 15 and not ISO_DATE.match(text.strip())


def find_phones(text: str) -> list[str]:
    return [m.group(0).strip() for m in PHONE.finditer(text or "") if _phone_like(m.group(0))]


def find_emails(text: str) -> list[str]:
    return EMAIL.findall(text or "")


def scrub(text: str | None) -> str:
    """Text safe to keep in logs or send out: e-mail addresses, tokens, street addresses
    and phone numbers replaced."""
    if not text:
        return ""
    out = EMAIL.sub("[email]", text)
    out = TOKEN.sub(lambda m: "/register/[token]" if m.group(0).startswith("/register/")
                    else "[token]", out)
    out = ADDRESS.sub("[address]", out)
    return PHONE.sub(lambda m: "[phone]" if _phone_like(m.group(0)) else m.group(0), out)


def scrub_value(value: Any) -> Any:
    """Scrub every string inside a JSON-like value."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_value(v) for v in value]
    return value


SHARE_WISH = re.compile(
    r"(?i)\b(?:please\s+)?(?:share\s+(?:this|it|widely|publicly|with\s+other)"
    r"|make\s+(?:this|it)\s+public|post\s+(?:this|it)\s+publicly|spread\s+the\s+word"
    r"|other\s+(?:communities|nodes)\s+(?:can|could|may)\s+see)")


# --------------------------------------------------------------------------- context

@dataclass
class ToolContext:
    """Who runs a tool, from where: the admin (None at the CLI) and the channel."""

    pool: asyncpg.Pool
    config: Config
    admin_id: str | None
    via: str  # web | mcp | cli
    ip: str | None = None
    limiter: Any = None  # service.ratelimit.RateLimiter or None (CLI)


class ToolError(AppError):
    pass


def _actor(ctx: ToolContext):  # type: ignore[no-untyped-def]
    from node.requests.service import Actor

    if ctx.admin_id is None:
        return Actor(None, True, True, None, f"copilot-{ctx.via}")
    return Actor(ctx.admin_id, True, True, ctx.ip, f"copilot-{ctx.via}")


# --------------------------------------------------------------------------- tools

async def triage_requests(ctx: ToolContext, limit: int = 20, helpers: int = 3
                          ) -> dict[str, Any]:
    """Open local requests by need, each with members nearby who helped on similar ones."""
    rows = await Q.open_requests(ctx.pool, limit)
    items = []
    for r in rows:
        reasons = []
        days = r["age_seconds"] // 86400
        if days >= 1:
            reasons.append(f"waiting {days} day{'s' if days != 1 else ''}")
        if r["comments"] == 0:
            reasons.append("no replies")
        if r["helpers"] == 0:
            reasons.append("no helper yet")
        suggested = []
        if r["created_by"] is not None:
            for h in await Q.suggested_helpers(ctx.pool, r["created_by"], r["id"], helpers):
                suggested.append({
                    "user_id": h["id"], "username": h["username"],
                    "display_name": h["display_name"] or h["username"],
                    "sync_scope": h["sync_scope"],
                    "invite_hops": h["dist"], "similar_requests": h["similar_requests"],
                    "completed_similar": h["completed_similar"],
                    "score": round(float(h["score"]), 4)})
        items.append({
            "id": r["id"], "title": r["title"] or r["description"][:80],
            "requester": r["requester"], "requester_id": r["created_by"],
            "requester_name": r["requester_name"], "requester_scope": r["requester_scope"],
            "created_at": r["created_at"],
            "age_hours": r["age_seconds"] // 3600, "comments": r["comments"],
            "helpers": r["helpers"], "sync_scope": r["sync_scope"], "reasons": reasons,
            "suggested_helpers": suggested})
    return {"requests": items, "count": len(items)}


async def suggest_scope_changes(ctx: ToolContext, limit: int = 200) -> dict[str, Any]:
    """Records whose scope looks wrong, with the reason (no contact detail is echoed)."""
    suggestions = []
    texts = await Q.public_local_texts(ctx.pool, limit)
    for kind, rows in texts.items():
        for r in rows:
            text = f"{r['title'] or ''}\n{r['text'] or ''}"
            found = []
            if find_emails(text):
                found.append("an e-mail address")
            if find_phones(text):
                found.append("a phone number")
            if find_addresses(text):
                found.append("a street address")
            if found:
                suggestions.append({
                    "kind": kind, "id": r["id"], "current_scope": "public",
                    "suggested_scope": "private", "title": scrub(r["title"] or "")[:80],
                    "reason": f"public {kind} contains {' and '.join(found)}; it would be "
                              "published to other nodes"})
    for r in await Q.private_local_requests(ctx.pool, limit):
        text = f"{r['title'] or ''}\n{r['text'] or ''}"
        wish = SHARE_WISH.search(text)
        if wish and not find_emails(text) and not find_phones(text):
            suggestions.append({
                "kind": "request", "id": r["id"], "current_scope": "private",
                "suggested_scope": "public", "title": scrub(r["title"] or "")[:80],
                "reason": f"private request asks to be shared (\"{wish.group(0).strip()}\")"})
    return {"suggestions": suggestions, "count": len(suggestions)}


async def set_scope(ctx: ToolContext, kind: str, id: str, scope: str) -> dict[str, Any]:
    """Change the scope of one record through the same service as the scope page."""
    from node.requests import service as requests_service

    result = await requests_service.change_scope(ctx.pool, _actor(ctx), [(kind, id)], scope)
    return {"kind": kind, "id": id, "scope": scope, "changed": result.changed,
            "requested": bool(result.requested)}


async def create_invite(ctx: ToolContext, max_uses: int = 1, expires_days: int = 14,
                        suggested_username: str = "", gratitude: str = "",
                        help_examples: str = "") -> dict[str, Any]:
    """Create an invite through the same service as the invites page; returns its link."""
    from node.auth import service as auth_service

    data = {"max_uses": max_uses, "expires_days": expires_days,
            "suggested_username": suggested_username, "gratitude": gratitude,
            "help_examples": help_examples}
    invite = await auth_service.create_invite(ctx.pool, ctx.config, data,
                                              created_by=ctx.admin_id, ip=ctx.ip,
                                              via=f"copilot-{ctx.via}")
    return {"invite_id": invite.id,
            "link": auth_service.invite_link(link_base(ctx.config), invite.token),
            "max_uses": invite.max_uses, "expires_at": invite.expires_at,
            "auto_approve": invite.auto_approve}


def _record_problem(rec: Any) -> dict[str, Any] | None:
    text = rec.body + "\n" + "\n".join(
        f"{n}: {v}" for n, v in rec.headers if n not in ("Contact-Email",))
    found = []
    if find_emails(text):
        found.append("e-mail address")
    if find_phones(text):
        found.append("phone number")
    if find_addresses(text):
        found.append("street address")
    if not found or rec.deleted:
        return None
    return {"entity": rec.entity, "id": rec.id,
            "problem": f"public {rec.entity} contains {' and '.join(found)}",
            "fix": f"set_scope kind={rec.entity} id={rec.id} scope=private"
            if rec.entity in ("request", "comment", "user") else ""}


async def sync_preview(ctx: ToolContext, snapshot: bool = False) -> dict[str, Any]:
    """What the next export would publish (nothing is written) and whether it is safe.

    ``waiting`` lists public changes still inside the publishing grace period
    (WB_PUBLISH_DELAY): they leave with a later export unless withdrawn, so their
    problems count too."""
    from node.sync import export

    result, records = await export.preview(ctx.pool, ctx.config, snapshot=snapshot)
    problems = []
    listed = []
    for rec in records:
        problem = _record_problem(rec)
        if problem is not None:
            problems.append(problem)
        if len(listed) < 100:
            listed.append({"entity": rec.entity, "id": rec.id,
                           "tombstone": bool(rec.deleted),
                           "title": scrub(rec.get("Title") or rec.get("Username") or "")})
    waiting = []
    for w in result.waiting:
        rec = w.record
        problem = _record_problem(rec)
        if problem is not None:
            problems.append(dict(problem, waiting=True))
        if len(waiting) < 100:
            waiting.append({"entity": rec.entity, "id": rec.id,
                            "title": scrub(rec.get("Title") or rec.get("Username") or ""),
                            "leaves_in_seconds": w.leaves_in_seconds,
                            "leaves_at": w.leaves_at})
    return {"kind": result.kind, "records": len(records), "counts": result.counts,
            "items": listed, "waiting": waiting, "waiting_count": len(result.waiting),
            "safe": not problems, "problems": problems,
            "opted_in_contacts": sum(1 for r in records if r.get("Contact-Email"))}


# --------------------------------------------------------------------------- registry

@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    schema: dict[str, Any]
    fn: Callable[..., Awaitable[dict[str, Any]]]
    mutating: bool = False
    required: tuple[str, ...] = field(default=())


def _int_prop(desc: str, low: int, high: int, default: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": low, "maximum": high, "default": default,
            "description": desc}


TOOLS: dict[str, Tool] = {t.name: t for t in (
    Tool("triage_requests",
         "Open local help requests ordered by need (age, no replies, no helper yet), each "
         "with suggested helpers: members within two invite hops of the requester who "
         "commented on or saw through similar requests.",
         {"limit": _int_prop("How many requests", 1, 100, 20),
          "helpers": _int_prop("Suggested helpers per request", 0, 10, 3)},
         triage_requests),
    Tool("suggest_scope_changes",
         "Records whose sync scope looks wrong: public records containing an e-mail address "
         "or phone number, private requests whose author asked to share them. With reasons.",
         {"limit": _int_prop("How many records of each kind to examine", 1, 1000, 200)},
         suggest_scope_changes),
    Tool("set_scope",
         "Set the sync scope (private or public) of one local request, comment or member. "
         "Mutating: needs the admin's confirmation.",
         {"kind": {"type": "string", "enum": ["request", "comment", "user"]},
          "id": {"type": "string", "maxLength": 80},
          "scope": {"type": "string", "enum": ["private", "public"]}},
         set_scope, mutating=True, required=("kind", "id", "scope")),
    Tool("create_invite",
         "Create an invite link for a new member. Mutating: needs the admin's confirmation.",
         {"max_uses": _int_prop("How many people may use it", 1, 100, 1),
          "expires_days": _int_prop("Days until it expires (0: never)", 0, 365, 14),
          "suggested_username": {"type": "string", "maxLength": 40},
          "gratitude": {"type": "string", "maxLength": 1000},
          "help_examples": {"type": "string", "maxLength": 1000}},
         create_invite, mutating=True),
    Tool("sync_preview",
         "What the next sync export would publish to other nodes, without writing it, and "
         "whether it is safe (no e-mail addresses or phone numbers in public text).",
         {"snapshot": {"type": "boolean", "default": False,
                       "description": "Preview a full snapshot instead of the next delta"}},
         sync_preview),
)}


def input_schema(tool: Tool) -> dict[str, Any]:
    return {"type": "object", "properties": tool.schema, "required": list(tool.required),
            "additionalProperties": False}


def validate_arguments(tool: Tool, args: Any) -> dict[str, Any]:
    """Check arguments against the tool's small JSON schema; fill in defaults."""
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ToolError(400, "invalid_arguments", "Arguments must be an object.")
    unknown = sorted(set(args) - set(tool.schema))
    if unknown:
        raise ToolError(400, "invalid_arguments", f"Unknown argument(s): {', '.join(unknown)}.")
    clean: dict[str, Any] = {}
    for name, spec in tool.schema.items():
        if name not in args:
            if name in tool.required:
                raise ToolError(400, "invalid_arguments", f"Missing argument: {name}.")
            if "default" in spec:
                clean[name] = spec["default"]
            continue
        value = args[name]
        kind = spec["type"]
        ok = ((kind == "integer" and isinstance(value, int) and not isinstance(value, bool))
              or (kind == "string" and isinstance(value, str))
              or (kind == "boolean" and isinstance(value, bool)))
        if not ok:
            raise ToolError(400, "invalid_arguments", f"{name} must be a {kind}.")
        if "enum" in spec and value not in spec["enum"]:
            raise ToolError(400, "invalid_arguments",
                            f"{name} must be one of {', '.join(spec['enum'])}.")
        if kind == "integer" and not spec["minimum"] <= value <= spec["maximum"]:
            raise ToolError(400, "invalid_arguments",
                            f"{name} must be between {spec['minimum']} and {spec['maximum']}.")
        if kind == "string" and len(value) > spec.get("maxLength", 10_000):
            raise ToolError(400, "invalid_arguments", f"{name} is too long.")
        clean[name] = value
    return clean


def summarize(tool: str, result: dict[str, Any]) -> str:
    """A one-line, scrubbed summary of a tool result for the audit table."""
    if tool == "triage_requests":
        return plural(result["count"], "%(num)d open request", "%(num)d open requests")
    if tool == "suggest_scope_changes":
        return plural(result["count"], "%(num)d suggestion", "%(num)d suggestions")
    if tool == "set_scope":
        return f"{result['kind']}:{result['id']} -> {result['scope']} (changed {result['changed']})"
    if tool == "create_invite":
        return (f"invite {result['invite_id']} "
                f"({plural(result['max_uses'], '%(num)d use', '%(num)d uses')})")
    if tool == "sync_preview":
        problems = len(result["problems"])
        return (plural(result["records"], "%(num)d record", "%(num)d records") + ", "
                + ("safe" if result["safe"]
                   else plural(problems, "%(num)d problem", "%(num)d problems")))
    return scrub(json.dumps(result, default=str))[:200]


async def audit(ctx: ToolContext, tool: str, arguments: dict[str, Any], summary: str,
                started: float, success: bool, error_code: str | None = None, *,
                prompt: str | None = None, response: str | None = None) -> int:
    return await Q.insert_audit(
        ctx.pool, admin_id=ctx.admin_id, via=ctx.via, tool=tool,
        arguments=scrub_value(arguments), result_summary=scrub(summary)[:500],
        latency_ms=int((time.perf_counter() - started) * 1000), success=success,
        error_code=error_code, prompt=None if prompt is None else scrub(prompt),
        response=None if response is None else scrub(response))


def check_rate(ctx: ToolContext) -> None:
    if ctx.limiter is not None and ctx.admin_id is not None \
            and not ctx.limiter.allow(f"copilot:{ctx.admin_id}"):
        raise ToolError(429, "rate_limited",
                        "Too many copilot calls this minute; wait a little.")


async def run_tool(ctx: ToolContext, name: str, arguments: Any, *,
                   rate_limited: bool = True) -> dict[str, Any]:
    """Validate, rate-limit, run and audit one tool call. Raises ToolError/AppError."""
    started = time.perf_counter()
    tool = TOOLS.get(name)
    raw_args = arguments if isinstance(arguments, dict) else {"_raw": str(arguments)[:200]}
    try:
        if tool is None:
            raise ToolError(404, "unknown_tool", f"There is no tool named {name[:60]!r}.")
        if rate_limited:
            check_rate(ctx)
        args = validate_arguments(tool, arguments)
        result = await tool.fn(ctx, **args)
    except AppError as exc:
        await audit(ctx, name[:60], raw_args, exc.message, started, False, exc.code)
        log.info("copilot tool refused", extra={"tool": name[:60], "error_code": exc.code,
                                                "via": ctx.via})
        raise
    except Exception:
        await audit(ctx, name, raw_args, "internal error", started, False, "internal_error")
        raise
    await audit(ctx, name, args, summarize(name, result), started, True)
    return result


# --------------------------------------------------------------------------- satisfaction

SATISFACTION_TARGET = 0.8  # the copilot's goal: more than 80 % of rated answers helpful
SATISFACTION_WINDOWS = (7, 30)


def _rate(helpful: int, rated: int) -> float | None:
    return round(helpful / rated, 4) if rated else None


async def satisfaction(pool: asyncpg.Pool) -> dict[str, Any]:
    """Helpful rate of chat answers, overall and per tool, for the last 7 and 30 days.

    The rate is helpful / rated (None while nothing is rated); ``answers`` and ``rated``
    say how much it rests on. Every tool is listed, with zeros when unused.
    """
    windows = []
    for days in SATISFACTION_WINDOWS:
        rows = await Q.satisfaction(pool, days)
        overall = rows[0]
        per_tool = {r["tool"]: r for r in rows[1:]}
        tools = []
        for name in [*TOOLS, "(no tool)"]:
            r = per_tool.get(name)
            answers, rated, helpful = (r["answers"], r["rated"], r["helpful"]) if r else (0, 0, 0)
            tools.append({"tool": name, "answers": answers, "rated": rated,
                          "helpful": helpful, "rate": _rate(helpful, rated)})
        windows.append({"days": days, "answers": overall["answers"],
                        "rated": overall["rated"], "helpful": overall["helpful"],
                        "rate": _rate(overall["helpful"], overall["rated"]),
                        "tools": tools})
    return {"target": SATISFACTION_TARGET, "windows": windows}


# --------------------------------------------------------------------------- switches

async def is_active(pool: asyncpg.Pool, config: Config) -> bool:
    """ENABLE_COPILOT is set and an admin switched the copilot on (read every time)."""
    if not config.get_bool("ENABLE_COPILOT"):
        return False
    return bool((await Q.get_settings(pool))["enabled"])


async def gateway_key(pool: asyncpg.Pool, config: Config) -> str:
    row = await Q.get_settings(pool)
    return row["api_key"] or config["DEDALUS_API_KEY"]


async def create_token(pool: asyncpg.Pool, username: str, label: str = "") -> tuple[str, str]:
    """A new MCP bearer token for a local admin: (token id, token). Only the hash is kept."""
    from service.ids import new_token, token_hash, ulid

    admin = await Q.local_admin(pool, username)
    if admin is None:
        raise AppError(404, "unknown_admin", f"No active local admin named {username!r}.")
    token = "wbmcp_" + new_token()
    token_id = ulid()
    await Q.insert_token(pool, token_id=token_id, token_hash=token_hash(token),
                         admin_id=admin["id"], label=label[:100])
    return token_id, token
