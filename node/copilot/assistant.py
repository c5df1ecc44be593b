"""One assistant turn: the admin's message, the gateway, the tools, the answer.

The model may only call the copilot's tools. Read-only tools run at once (audited
like any other call); mutating ones are never run by the model: they become
proposals the admin confirms or dismisses on the page. Anything else the model asks
for is refused, audited and reported back to it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from node.copilot import egress as E
from node.copilot import gateway as G
from node.copilot import queries as Q
from node.copilot import service as S
from service.ids import ulid

MAX_ROUNDS = 4
HISTORY = 20
TOOL_RESULT_MAX = 8000

SYSTEM_PROMPT = (
    "You are the Mutual Aid Copilot of a WhiteBalloon community node, helping one of its "
    "admins. Use the tools to look at open requests, scope problems and the next sync "
    "before answering; never invent members or requests. set_scope and create_invite "
    "change data: call them to propose a change, the admin confirms it on the page. "
    "Be brief and concrete.")


Emit = Callable[[str, dict[str, Any]], Awaitable[None]]


async def _no_emit(event: str, data: dict[str, Any]) -> None:
    return None


def tool_definitions() -> list[dict[str, Any]]:
    """The tools as chat-completions function definitions."""
    return [{"type": "function",
             "function": {"name": t.name, "description": t.description,
                          "parameters": S.input_schema(t)}} for t in S.TOOLS.values()]


@dataclass
class TurnResult:
    answer: str
    message_id: int
    proposals: list[str] = field(default_factory=list)
    tools_run: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    tools_proposed: list[str] = field(default_factory=list)


def _dump(value: Any) -> str:
    from node.web import json_dumps

    text = json_dumps(value)
    return text if len(text) <= TOOL_RESULT_MAX else text[:TOOL_RESULT_MAX] + "…(truncated)"


async def _handle_call(ctx: S.ToolContext, call: G.ToolCall, result: TurnResult,
                       emit: Emit) -> str:
    """Run, propose or refuse one tool call; the text goes back to the model."""
    tool = S.TOOLS.get(call.name)
    if tool is None:
        started = time.perf_counter()
        await S.audit(ctx, call.name[:60] or "?", {"requested": call.arguments}
                      if isinstance(call.arguments, dict) else {}, "refused: not an allowed tool",
                      started, False, "tool_not_allowed")
        result.refused.append(call.name)
        await emit("tool", {"name": call.name[:60], "status": "refused",
                            "code": "tool_not_allowed"})
        return json.dumps({"error": "tool_not_allowed",
                           "message": f"{call.name!r} is not a tool you may use."})
    if tool.mutating:
        started = time.perf_counter()
        try:
            args = S.validate_arguments(tool, call.arguments)
        except S.ToolError as exc:
            await S.audit(ctx, tool.name, {}, exc.message, started, False, exc.code)
            await emit("tool", {"name": tool.name, "status": "failed", "code": exc.code})
            return E.error(exc.code, exc.message)
        proposal_id = ulid()
        await Q.add_proposal(ctx.pool, proposal_id=proposal_id, admin_id=ctx.admin_id or "",
                             tool=tool.name, arguments=args, reason="")
        await S.audit(ctx, tool.name, args, f"proposed {proposal_id}; awaiting confirmation",
                      started, True, "proposed")
        result.proposals.append(proposal_id)
        result.tools_proposed.append(tool.name)
        await emit("tool", {"name": tool.name, "status": "proposed"})
        await emit("proposal", {"id": proposal_id, "tool": tool.name, "arguments": args})
        return json.dumps({"status": "proposed", "proposal_id": proposal_id,
                           "message": "The admin sees a confirm button; nothing changed yet."})
    try:
        value = await S.run_tool(ctx, tool.name, call.arguments, rate_limited=False)
    except S.ToolError as exc:
        await emit("tool", {"name": tool.name, "status": "failed", "code": exc.code})
        return E.error(exc.code, exc.message)
    except Exception as exc:  # an AppError from a service, e.g. not found
        code = getattr(exc, "code", "tool_failed")
        if code == "tool_failed":
            raise
        await emit("tool", {"name": tool.name, "status": "failed", "code": code})
        return E.error(code, getattr(exc, "message", ""))
    result.tools_run.append(tool.name)
    await emit("tool", {"name": tool.name, "status": "ran"})
    return _dump(E.tool_result(tool.name, value,
                               share_private=ctx.config.get_bool("COPILOT_SHARE_PRIVATE")))


async def turn(ctx: S.ToolContext, session: aiohttp.ClientSession, text: str, *,
               time_limit: float = G.DEFAULT_TIMEOUT, emit: Emit | None = None,
               rate_checked: bool = False) -> TurnResult:
    """Send the conversation plus ``text`` to the gateway and run the tool calls.

    With ``emit`` the gateway streams; ``emit("delta", {"text"})`` gets the assistant's
    text as it arrives, ``emit("tool", {"name", "status"[, "code"]})`` each tool call
    handled and ``emit("proposal", {"id", "tool", "arguments"})`` each change waiting for
    the admin. ``rate_checked``: the caller already counted this turn against the rate
    limit (the streaming handler does, so a refusal is an HTTP 429 before the stream).

    The admin's message and the answer are stored (scrubbed) only when the turn
    succeeds; every turn, failed or not, leaves one ``chat`` audit row.
    """
    assert ctx.admin_id is not None
    started = time.perf_counter()
    if not rate_checked:
        S.check_rate(ctx)
    text = text.strip()[:4000]
    history = await Q.messages(ctx.pool, ctx.admin_id, HISTORY)
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM_PROMPT}]
    messages += [{"role": m["role"], "content": m["content"]} for m in history
                 if m["role"] in ("user", "assistant")]
    messages.append({"role": "user", "content": S.scrub(text)})
    result = TurnResult("", 0)
    config = ctx.config
    key = await S.gateway_key(ctx.pool, config)
    # Recorded on every chat audit row while private titles may leave (docs/copilot.md).
    shared = {"share_private": True} if config.get_bool("COPILOT_SHARE_PRIVATE") else {}
    try:
        if not key:
            raise G.GatewayError("gateway_key_missing",
                                 "No gateway key: an admin enters one on /admin/dedalus.")
        for _ in range(MAX_ROUNDS):
            if emit is None:
                reply = await G.chat(session, base_url=config["COPILOT_GATEWAY_URL"],
                                     key=key, model=config["COPILOT_MODEL"],
                                     messages=E.outgoing(messages), tools=tool_definitions(),
                                     time_limit=time_limit)
            else:
                reply = await G.chat_stream(
                    session, base_url=config["COPILOT_GATEWAY_URL"], key=key,
                    model=config["COPILOT_MODEL"], messages=E.outgoing(messages),
                    tools=tool_definitions(), time_limit=time_limit,
                    on_text=lambda delta: emit("delta", {"text": delta}))
            if not reply.tool_calls:
                result.answer = reply.content
                break
            messages.append({"role": "assistant", "content": reply.content or None,
                             "tool_calls": reply.raw_message.get("tool_calls")})
            for call in reply.tool_calls:
                messages.append({"role": "tool", "tool_call_id": call.id,
                                 "content": await _handle_call(ctx, call, result,
                                                             emit or _no_emit)})
        else:
            raise G.GatewayError("gateway_loop",
                                 f"The model kept calling tools after {MAX_ROUNDS} rounds.")
    except G.GatewayError as exc:
        await S.audit(ctx, "chat", {"tools_run": result.tools_run, "refused": result.refused,
                                    **shared},
                      exc.message, started, False, exc.code, prompt=text)
        raise
    summary = (f"answered; tools {', '.join(result.tools_run) or 'none'}; "
               f"proposals {len(result.proposals)}; refused {len(result.refused)}")
    async with ctx.pool.acquire() as conn, conn.transaction():
        audit_id = await Q.insert_audit(
            conn, admin_id=ctx.admin_id, via=ctx.via, tool="chat",
            arguments={"tools_run": result.tools_run, "refused": result.refused,
                       "proposals": result.proposals,
                       "tools_proposed": result.tools_proposed, **shared},
            result_summary=summary + ("; private titles shared" if shared else ""),
            latency_ms=int((time.perf_counter() - started) * 1000),
            success=True, prompt=S.scrub(text), response=S.scrub(result.answer))
        await Q.add_message(conn, ctx.admin_id, "user", S.scrub(text))
        result.message_id = await Q.add_message(conn, ctx.admin_id, "assistant",
                                                S.scrub(result.answer), audit_id)
    return result
