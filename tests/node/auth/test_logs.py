"""The login code and invite tokens never reach the logs."""

from __future__ import annotations

import logging

from tests.node.auth.helpers import bootstrap_admin


async def test_login_code_and_invite_token_never_reach_the_logs(devices, caplog):
    caplog.set_level(logging.DEBUG)
    admin = await bootstrap_admin(devices)
    invite = await admin.invite()
    status, body = await devices().login("ada")  # a second device of the admin
    assert status in (200, 201), body
    code = body["code"]
    token = invite["link"].rsplit("/", 1)[-1]
    logged = "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    assert code not in logged
    assert token not in logged
