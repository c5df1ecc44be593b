"""A small client for an OpenAI-compatible chat-completions gateway.

Only what the copilot needs: one completion with tools attached, and a live check of a
key. Every failure becomes a ``GatewayError`` with a stable code; nothing the gateway
sends is trusted to have the right shape.
"""

from __future__ import annotations

import json
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


async def _request(session: aiohttp.ClientSession, method: str, url: str, key: str,
                   body: dict[str, Any] | None, time_limit: float) -> Any:
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    try:
        async with session.request(method, url, json=body, headers=headers,
                                   timeout=aiohttp.ClientTimeout(total=time_limit)) as resp:
            text = await resp.text()
            if resp.status in (401, 403):
                raise GatewayError("gateway_key_rejected",
                                   f"The gateway refused the key (HTTP {resp.status}).")
            if resp.status == 429:
                raise GatewayError("gateway_rate_limited", "The gateway is rate limiting us.")
            if resp.status >= 400:
                raise GatewayError("gateway_error",
                                   f"The gateway answered HTTP {resp.status}.")
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


async def chat(session: aiohttp.ClientSession, *, base_url: str, key: str, model: str,
               messages: list[dict[str, Any]], tools: list[dict[str, Any]],
               time_limit: float = DEFAULT_TIMEOUT) -> Reply:
    body: dict[str, Any] = {"model": model, "messages": messages}
    if tools:
        body["tools"] = tools
        body["tool_choice"] = "auto"
    data = await _request(session, "POST", _url(base_url, "/chat/completions"), key, body,
                          time_limit)
    try:
        message = data["choices"][0]["message"]
        if not isinstance(message, dict):
            raise TypeError
        content = message.get("content") or ""
        if not isinstance(content, str):
            raise TypeError
        calls = []
        for call in message.get("tool_calls") or []:
            fn = call["function"]
            raw = fn.get("arguments") or "{}"
            try:
                args = json.loads(raw) if isinstance(raw, str) else raw
            except ValueError:
                args = raw
            calls.append(ToolCall(str(call.get("id") or ""), str(fn["name"]), args))
    except (KeyError, IndexError, TypeError, AttributeError):
        raise GatewayError("gateway_malformed",
                           "The gateway's answer is not a chat completion.") from None
    if not content and not calls:
        raise GatewayError("gateway_malformed", "The gateway returned an empty answer.")
    return Reply(content, calls, message)


async def verify_key(session: aiohttp.ClientSession, *, base_url: str, key: str,
                     time_limit: float = 15.0) -> int:
    """Live check: GET {url}/models with the key; returns how many models it lists."""
    if not key:
        raise GatewayError("gateway_key_missing", "Enter a key first.")
    data = await _request(session, "GET", _url(base_url, "/models"), key, None, time_limit)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise GatewayError("gateway_malformed", "The gateway's model list is not valid.")
    return len(data["data"])

