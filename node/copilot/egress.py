"""The egress gate: the one place everything sent to the copilot's gateway passes.

The gateway is a third party. What it may see is decided here, field by field:

- **Tool results** are rebuilt from a per-tool allowlist (``RESULT_GATES``); a field
  not named there never leaves, so a new column in a tool's result stays at home
  until someone adds it here (and to docs/copilot.md) on purpose.
- **Private records** leave only as an opaque reference (their ID) and
  non-identifying facts: age, status, comment and helper counts, scope. Their titles
  leave only when the operator set ``COPILOT_SHARE_PRIVATE`` (off by default; the
  settings page warns and every chat audit row records it); their descriptions,
  bodies and authors never do.
- **Members** appear by username and display name only when their profile is public
  (already published to other nodes); a private member is ``{"ref": "member:<id>"}``.
- **All free text** (titles, display names, the admin's messages, the history, the
  system prompt, tool errors) passes the PII scrubber: e-mail addresses, phone
  numbers, street addresses and tokens become ``[email]``, ``[phone]``,
  ``[address]``, ``[token]``.
- ``outgoing`` scrubs every string of the final chat-completions messages once more
  just before they are sent, so a gap in a gate above still cannot carry contact
  details out.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from node.copilot.service import scrub

TITLE_MAX = 120

Gate = Callable[[dict[str, Any], bool], dict[str, Any]]


def text(value: Any, limit: int = TITLE_MAX) -> str:
    """Free text as it may leave: scrubbed, single-line, bounded."""
    return " ".join(scrub(str(value or "")).split())[:limit]


def member(user_id: Any, scope: Any, username: Any, display_name: Any) -> dict[str, Any] | None:
    """A member as the gateway sees them: by name only when their profile is public."""
    if user_id is None:
        return None
    if scope == "public":
        return {"id": str(user_id), "username": text(username, 40),
                "display_name": text(display_name or username, 80)}
    return {"ref": f"member:{user_id}", "private": True}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# --------------------------------------------------------------------------- per tool

def _triage(result: dict[str, Any], share_private: bool) -> dict[str, Any]:
    items = []
    for r in result.get("requests", []):
        public = r.get("sync_scope") == "public"
        item: dict[str, Any] = {
            "id": str(r["id"]), "sync_scope": "public" if public else "private",
            "age_hours": _int(r.get("age_hours")), "comments": _int(r.get("comments")),
            "helpers": _int(r.get("helpers")),
            # Fixed vocabulary built by the tool ("waiting 3 days", "no replies").
            "reasons": [text(x, 40) for x in r.get("reasons", [])]}
        if public or share_private:
            item["title"] = text(r.get("title"))
        item["requester"] = member(r.get("requester_id"), r.get("requester_scope"),
                                   r.get("requester"), r.get("requester_name"))
        helpers = []
        for h in r.get("suggested_helpers", []):
            entry = member(h.get("user_id"), h.get("sync_scope"), h.get("username"),
                           h.get("display_name")) or {}
            entry.update({"invite_hops": _int(h.get("invite_hops")),
                          "similar_requests": _int(h.get("similar_requests")),
                          "completed_similar": _int(h.get("completed_similar")),
                          "score": float(h.get("score") or 0)})
            helpers.append(entry)
        item["suggested_helpers"] = helpers
        items.append(item)
    return {"requests": items, "count": len(items)}


def _suggestions(result: dict[str, Any], share_private: bool) -> dict[str, Any]:
    items = []
    for s in result.get("suggestions", []):
        public = s.get("current_scope") == "public"
        item: dict[str, Any] = {
            "kind": s["kind"], "id": str(s["id"]),
            "current_scope": "public" if public else "private",
            "suggested_scope": "private" if public else "public"}
        if public:
            # "public request contains a phone number; it would be published ..."
            item["reason"] = text(s.get("reason"), 200)
        else:
            # The tool quotes the member's words; a private record's words stay home.
            item["reason"] = "private request asks to be shared"
        if public or share_private:
            item["title"] = text(s.get("title"))
        items.append(item)
    return {"suggestions": items, "count": len(items)}


def _set_scope(result: dict[str, Any], share_private: bool) -> dict[str, Any]:
    return {"kind": result["kind"], "id": str(result["id"]), "scope": result["scope"],
            "changed": _int(result.get("changed"))}


def _invite(result: dict[str, Any], share_private: bool) -> dict[str, Any]:
    # Never the link: it carries the invite's secret token.
    return {"invite_id": str(result["invite_id"]), "max_uses": _int(result.get("max_uses")),
            "expires_at": str(result.get("expires_at") or ""),
            "auto_approve": bool(result.get("auto_approve"))}


def _preview(result: dict[str, Any], share_private: bool) -> dict[str, Any]:
    # Everything here is public by construction (what the export would publish);
    # free text is scrubbed all the same.
    def record(i: dict[str, Any]) -> dict[str, Any]:
        out = {"entity": i["entity"], "id": str(i["id"]), "title": text(i.get("title"))}
        if "tombstone" in i:
            out["tombstone"] = bool(i["tombstone"])
        if "leaves_in_seconds" in i:
            out["leaves_in_seconds"] = _int(i["leaves_in_seconds"])
        return out

    return {"kind": result["kind"], "records": _int(result.get("records")),
            "counts": {str(k): _int(v) for k, v in (result.get("counts") or {}).items()},
            "items": [record(i) for i in result.get("items", [])],
            "waiting": [record(i) for i in result.get("waiting", [])],
            "safe": bool(result.get("safe")),
            "waiting_count": _int(result.get("waiting_count")),
            "problems": [{"entity": p["entity"], "id": str(p["id"]),
                          "problem": text(p.get("problem"), 200),
                          "fix": text(p.get("fix"), 200), "waiting": bool(p.get("waiting"))}
                         for p in result.get("problems", [])],
            "opted_in_contacts": _int(result.get("opted_in_contacts"))}


RESULT_GATES: dict[str, Gate] = {
    "triage_requests": _triage,
    "suggest_scope_changes": _suggestions,
    "set_scope": _set_scope,
    "create_invite": _invite,
    "sync_preview": _preview,
}


def tool_result(tool: str, result: dict[str, Any], *, share_private: bool) -> dict[str, Any]:
    """A tool's result as the gateway may see it (allowlisted, scrubbed)."""
    gate = RESULT_GATES.get(tool)
    if gate is None:  # a tool without a gate sends nothing but that it ran
        return {"ok": True}
    return gate(result, share_private)


def error(code: str, message: str) -> str:
    return json.dumps({"error": text(code, 60), "message": text(message, 300)})


# --------------------------------------------------------------------------- last line

def _scrub_deep(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrub_deep(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_deep(v) for v in value]
    return value


def outgoing(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chat-completions messages exactly as sent: every string scrubbed once more.

    Tool results are JSON text; they are parsed, scrubbed value by value and dumped
    again, so the scrubber's patterns cannot run across JSON syntax.
    """
    out = []
    for m in messages:
        m = dict(m)
        content = m.get("content")
        if m.get("role") == "tool" and isinstance(content, str):
            try:
                m["content"] = json.dumps(_scrub_deep(json.loads(content)), ensure_ascii=False)
            except ValueError:
                m["content"] = scrub(content)
        elif isinstance(content, str):
            m["content"] = scrub(content)
        if m.get("tool_calls"):
            m["tool_calls"] = _scrub_deep(m["tool_calls"])
        out.append(m)
    return out
