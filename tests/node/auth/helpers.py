"""Devices for the auth tests: each is an HTTP client with its own cookie jar, so a test
can play a member's phone, laptop, and an attacker against one running node."""

from __future__ import annotations

from typing import Any

import aiohttp

JSON = {"Accept": "application/json"}


class Device:
    def __init__(self, node_client):
        self.base = str(node_client.make_url("")).rstrip("/")
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def close(self) -> None:
        await self.session.close()

    async def csrf(self) -> str:
        async with self.session.get(self.base + "/api/csrf") as r:
            assert r.status == 200
            return (await r.json())["csrf_token"]

    async def get(self, path: str, **kw) -> tuple[int, str]:
        async with self.session.get(self.base + path, allow_redirects=False, **kw) as r:
            return r.status, await r.text()

    async def get_json(self, path: str) -> tuple[int, Any]:
        async with self.session.get(self.base + path, headers=JSON, allow_redirects=False) as r:
            return r.status, await r.json()

    async def post_json(self, path: str, body: dict | None = None, *, csrf: bool = True
                        ) -> tuple[int, Any]:
        headers = dict(JSON)
        if csrf:
            headers["X-CSRF-Token"] = await self.csrf()
        async with self.session.post(self.base + path, json=body or {}, headers=headers,
                                     allow_redirects=False) as r:
            return r.status, await r.json()

    async def post_form(self, path: str, data: dict | None = None, *, csrf: bool = True
                        ) -> tuple[int, str, aiohttp.ClientResponse]:
        form = dict(data or {})
        if csrf:
            form["csrf_token"] = await self.csrf()
        async with self.session.post(self.base + path, data=form, allow_redirects=False) as r:
            return r.status, await r.text(), r

    async def register(self, username: str, token: str | None = None, **extra) -> tuple[int, Any]:
        body = {"username": username, **extra}
        if token:
            body["invite_token"] = token
        return await self.post_json("/auth/register", body)

    async def login(self, username: str) -> tuple[int, Any]:
        return await self.post_json("/auth/login", {"username": username})

    async def whoami(self) -> str:
        """"anonymous", "pending" or "active", as the node sees this device."""
        status, body = await self.get_json("/login/pending")
        if status == 401:
            return "anonymous"
        assert status == 200, body
        return body["status"]

    async def invite(self, **options) -> dict:
        status, body = await self.post_json("/auth/invites", options)
        assert status == 201, body
        return body


async def bootstrap_admin(devices, username: str = "ada") -> Device:
    """A device (from the ``devices`` fixture) signed in as the node's first, admin member."""
    device = devices()
    status, body = await device.register(username)
    assert status == 201 and body["is_admin"] and body["status"] == "active", body
    return device
