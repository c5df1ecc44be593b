"""A local fake of an OpenAI-compatible chat-completions gateway, on loopback.

It answers from a script (one step per completion request) and records every call.
A step is a whole completion (``answer(...)``/``tool_calls(...)``), an HTTP status, or
one of "hang" / "garbage". When the request asks for ``stream: true`` a whole completion
is streamed as server-sent events the way OpenAI-compatible gateways do it: the text in
several ``choices[0].delta.content`` pieces, tool calls as ``delta.tool_calls`` whose
arguments arrive in pieces, then ``data: [DONE]``. ``Stream([...])`` scripts the chunks
by hand, with the markers GATE (wait for ``release_gate``), CUT (drop the connection)
and END (stop without ``[DONE]``); ``JsonAnyway(step)`` ignores ``stream``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

GATE, CUT, END = "<gate>", "<cut>", "<end>"


@dataclass
class Stream:
    chunks: list[Any]


@dataclass
class JsonAnyway:
    step: Any


def tool_calls(*calls: tuple[str, dict]) -> dict:
    return {"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None,
        "tool_calls": [{"id": f"call_{i}", "type": "function",
                        "function": {"name": name, "arguments": json.dumps(args)}}
                       for i, (name, args) in enumerate(calls)]}}]}


def answer(text: str) -> dict:
    return {"choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}]}


def delta(**fields: Any) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": fields, "finish_reason": None}]}


def pieces(text: str, n: int = 3) -> list[str]:
    size = max(1, -(-len(text) // n))
    return [text[i:i + size] for i in range(0, len(text), size)]


def as_chunks(completion: dict) -> list[Any]:
    """A whole completion as the chunks a streaming gateway would send."""
    message = completion["choices"][0]["message"]
    chunks: list[Any] = [delta(role="assistant", content="")]
    chunks += [delta(content=p) for p in pieces(message.get("content") or "")]
    for i, call in enumerate(message.get("tool_calls") or []):
        chunks.append(delta(tool_calls=[{"index": i, "id": call["id"], "type": "function",
                                         "function": {"name": call["function"]["name"],
                                                      "arguments": ""}}]))
        chunks += [delta(tool_calls=[{"index": i, "function": {"arguments": p}}])
                   for p in pieces(call["function"]["arguments"])]
    finish = "tool_calls" if message.get("tool_calls") else "stop"
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    return chunks


class FakeGateway:
    """Speaks the chat-completions protocol; answers from a script, records every call."""

    def __init__(self) -> None:
        self.script: list = []
        self.calls: list[dict] = []
        self.release = asyncio.Event()
        self.gate = asyncio.Event()
        self.url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.completions)
        app.router.add_get("/v1/models", self.models)
        return app

    async def completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.calls.append({"auth": request.headers.get("Authorization"), "body": body})
        step = self.script.pop(0)
        if step == "hang":
            await self.release.wait()
            return web.json_response({})
        if step == "garbage":
            return web.Response(text="<html>oops</html>", content_type="text/html")
        if isinstance(step, int):
            return web.json_response({"error": "boom"}, status=step)
        if isinstance(step, JsonAnyway):
            return web.json_response(step.step)
        if isinstance(step, Stream):
            return await self._stream(request, step.chunks)
        if body.get("stream"):
            return await self._stream(request, as_chunks(step))
        return web.json_response(step)

    async def _stream(self, request: web.Request, chunks: list[Any]) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b": keep-alive comment\n\n")
        for chunk in chunks:
            if chunk == GATE:
                await self.gate.wait()
                continue
            if chunk == CUT:
                assert request.transport is not None
                request.transport.close()
                return resp
            if chunk == END:
                await resp.write_eof()
                return resp
            data = chunk if isinstance(chunk, str) else json.dumps(chunk)
            await resp.write(f"data: {data}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def models(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != "Bearer good-key":
            return web.json_response({"error": "bad key"}, status=401)
        return web.json_response({"object": "list", "data": [{"id": "m1"}, {"id": "m2"}]})
