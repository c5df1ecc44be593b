"""A small client for an OpenAI-compatible chat-completions gateway.

Only what the copilot needs: one completion with tools attached (whole, or streamed as
server-sent events with ``stream: true``), and a live check of a key. Every failure
becomes a ``GatewayError`` with a stable code; nothing the gateway sends is trusted to
have the right shape.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

DEFAULT_TIMEOUT = 30.0


class GatewayError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: Any  # parsed JSON, or the raw string when it was not valid JSON


@dataclass
class Reply:
    content: str
    tool_calls: list[ToolCall]
    raw_message: dict[str, Any]


def _url(base: str, path: str) -> str:
    if not base:
        raise GatewayError("gateway_not_configured",
                           "No gateway is configured (COPILOT_GATEWAY_URL).")
    return base.rstrip("/") + path


def _status_error(status: int) -> GatewayError | None:
    if status in (401, 403):
        return GatewayError("gateway_key_rejected",
                            f"The gateway refused the key (HTTP {status}).")
    if status == 429:
        return GatewayError("gateway_rate_limited", "The gateway is rate limiting us.")
    if status >= 400:
        return GatewayError("gateway_error", f"The gateway answered HTTP {status}.")
    return None


async def _request(session: aiohttp.ClientSession, method: str, url: str, key: str,
                   body: dict[str, Any] | None, time_limit: float) -> Any:
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    try:
        async with session.request(method, url, json=body, headers=headers,
                                   timeout=aiohttp.ClientTimeout(total=time_limit)) as resp:
            text = await resp.text()
            error = _status_error(resp.status)
            if error is not None:
                raise error
    except TimeoutError:
        raise GatewayError("gateway_timeout",
                           f"The gateway did not answer within {time_limit:g} s.") from None
    except aiohttp.ClientError as exc:
        raise GatewayError("gateway_unreachable",
                           f"Cannot reach the gateway: {type(exc).__name__}.") from None
    try:
        return json.loads(text)
    except ValueError:
        raise GatewayError("gateway_malformed", "The gateway's answer is not JSON.") from None


def _body(model: str, messages: list[dict[str, Any]],
          tools: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": messages}
    if tools:
        body["tools"] = tools
        body["tool_choice"] = "auto"
    return body


def _reply(data: Any) -> Reply:
    """A whole (non-streamed) chat completion as a Reply."""
    try:
        message = data["choices"][0]["message"]
        if not isinstance(message, dict):
            raise TypeError
        content = message.get("content") or ""
        if not isinstance(content, str):
            raise TypeError
        calls = [_tool_call(call.get("id"), call["function"]["name"],
                            call["function"].get("arguments"))
                 for call in message.get("tool_calls") or []]
    except (KeyError, IndexError, TypeError, AttributeError):
        raise GatewayError("gateway_malformed",
                           "The gateway's answer is not a chat completion.") from None
    if not content and not calls:
        raise GatewayError("gateway_malformed", "The gateway returned an empty answer.")
    return Reply(content, calls, message)


def _tool_call(call_id: Any, name: Any, raw: Any) -> ToolCall:
    if not isinstance(name, str):
        raise TypeError
    raw = raw or "{}"
    try:
        args = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        args = raw
    return ToolCall(str(call_id or ""), name, args)


async def chat(session: aiohttp.ClientSession, *, base_url: str, key: str, model: str,
               messages: list[dict[str, Any]], tools: list[dict[str, Any]],
               time_limit: float = DEFAULT_TIMEOUT) -> Reply:
    data = await _request(session, "POST", _url(base_url, "/chat/completions"), key,
                          _body(model, messages, tools), time_limit)
    return _reply(data)


class _Accumulator:
    """Folds streamed ``choices[0].delta`` chunks into one assistant message."""

    def __init__(self) -> None:
        self.content: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}

    def add(self, chunk: Any) -> str:
        """Fold one chunk in; returns its new assistant text (may be empty)."""
        if isinstance(chunk, dict) and chunk.get("error"):
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise GatewayError("gateway_error",
                               f"The gateway failed mid-answer: {str(message)[:200]}")
        try:
            choices = chunk["choices"]
            if not choices:  # e.g. a final usage-only chunk
                return ""
            delta = choices[0].get("delta") or {}
            text = delta.get("content") or ""
            if not isinstance(text, str):
                raise TypeError
            for part in delta.get("tool_calls") or []:
                slot = self.calls.setdefault(int(part.get("index", len(self.calls))),
                                             {"id": "", "name": "", "arguments": ""})
                if part.get("id"):
                    slot["id"] = str(part["id"])
                fn = part.get("function") or {}
                slot["name"] += str(fn.get("name") or "")
                slot["arguments"] += str(fn.get("arguments") or "")
        except (KeyError, IndexError, TypeError, AttributeError, ValueError):
            raise GatewayError("gateway_malformed",
                               "The gateway sent a chunk that is not a chat completion "
                               "delta.") from None
        self.content.append(text)
        return text

    def reply(self) -> Reply:
        content = "".join(self.content)
        raw_calls = [{"id": c["id"], "type": "function",
                      "function": {"name": c["name"], "arguments": c["arguments"] or "{}"}}
                     for _, c in sorted(self.calls.items())]
        if any(not c["function"]["name"] for c in raw_calls):
            raise GatewayError("gateway_malformed", "The gateway streamed a nameless tool call.")
        calls = [_tool_call(c["id"], c["function"]["name"], c["function"]["arguments"])
                 for c in raw_calls]
        if not content and not calls:
            raise GatewayError("gateway_malformed", "The gateway returned an empty answer.")
        message: dict[str, Any] = {"role": "assistant", "content": content or None}
        if raw_calls:
            message["tool_calls"] = raw_calls
        return Reply(content, calls, message)


async def chat_stream(session: aiohttp.ClientSession, *, base_url: str, key: str, model: str,
                      messages: list[dict[str, Any]], tools: list[dict[str, Any]],
                      on_text: Callable[[str], Awaitable[None]],
                      time_limit: float = DEFAULT_TIMEOUT) -> Reply:
    """One completion with ``stream: true``; ``on_text`` gets each assistant text delta.

    The gateway's server-sent events (``data: {chunk}`` lines, ending with
    ``data: [DONE]``) are folded into the same Reply ``chat`` returns. A gateway that
    ignores ``stream`` and answers one JSON completion works too (one delta). ``time_limit``
    bounds the wait for each piece of the answer; the whole answer may take four times as
    long.
    """
    body = _body(model, messages, tools)
    body["stream"] = True
    headers = {"Authorization": f"Bearer {key}",
               "Accept": "text/event-stream, application/json"}
    timeout = aiohttp.ClientTimeout(total=time_limit * 4, sock_connect=time_limit,
                                    sock_read=time_limit)
    acc = _Accumulator()
    try:
        async with session.post(_url(base_url, "/chat/completions"), json=body,
                                headers=headers, timeout=timeout) as resp:
            error = _status_error(resp.status)
            if error is not None:
                raise error
            if resp.content_type != "text/event-stream":
                try:
                    reply = _reply(json.loads(await resp.text()))
                except ValueError:
                    raise GatewayError("gateway_malformed",
                                       "The gateway's answer is not JSON.") from None
                if reply.content:
                    await on_text(reply.content)
                return reply
            done = False
            async for raw_line in resp.content:
                line = raw_line.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue  # blank separators, comments (": ping"), event/id fields
                data = line[5:].strip()
                if data == "[DONE]":
                    done = True
                    break
                try:
                    chunk = json.loads(data)
                except ValueError:
                    raise GatewayError("gateway_malformed",
                                       "The gateway streamed a chunk that is not JSON.") from None
                text = acc.add(chunk)
                if text:
                    await on_text(text)
            if not done:
                raise GatewayError("gateway_malformed",
                                   "The gateway's stream ended before [DONE].")
    except TimeoutError:
        raise GatewayError("gateway_timeout",
                           f"The gateway did not answer within {time_limit:g} s.") from None
    except ValueError:  # a line longer than the reader's limit
        raise GatewayError("gateway_malformed",
                           "The gateway streamed a line that is too long.") from None
    except aiohttp.ClientPayloadError:
        raise GatewayError("gateway_stream_broken",
                           "The gateway's stream broke off mid-answer.") from None
    except aiohttp.ClientError as exc:
        raise GatewayError("gateway_unreachable",
                           f"Cannot reach the gateway: {type(exc).__name__}.") from None
    return acc.reply()


async def verify_key(session: aiohttp.ClientSession, *, base_url: str, key: str,
                     time_limit: float = 15.0) -> int:
    """Live check: GET {url}/models with the key; returns how many models it lists."""
    if not key:
        raise GatewayError("gateway_key_missing", "Enter a key first.")
    data = await _request(session, "GET", _url(base_url, "/models"), key, None, time_limit)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise GatewayError("gateway_malformed", "The gateway's model list is not valid.")
    return len(data["data"])

