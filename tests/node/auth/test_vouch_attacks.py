"""Hostile review of peer approval and the approval ledger (#23): notes and bodies an
attacker chooses (line separators, lone surrogates), and downloaded copies of the ledger
doctored in ways the hash does not cover."""

from __future__ import annotations

import json

import pytest

from node.auth import approval as A
from node.auth import ledger
from tests.node.auth.helpers import JSON, Device, bootstrap_admin
from tests.node.auth.test_ledger import _members, wb  # noqa: F401 (a fixture)

QUEUE = "/review/sign-ins"
#: characters that str.splitlines() breaks on but json.dumps(ensure_ascii=False) leaves as is
SEPARATORS = "\u2028\u2029\x85"


async def _reviewer(devices, admin: Device, node_pool) -> Device:
    invite = await admin.invite()
    rita = devices()
    status, body = await rita.register("rita", token=invite["token"])
    assert status == 201, body
    await node_pool.execute("INSERT INTO member_roles (user_id, role) VALUES ($1, 'reviewer')",
                            body["user_id"])
    return rita


@pytest.mark.parametrize("sep", list(SEPARATORS), ids=["u2028", "u2029", "nel"])
async def test_a_note_with_a_line_separator_does_not_break_a_downloaded_ledger(
        node_pool, node_config, devices, wb, tmp_path, sep):  # noqa: F811
    """A reviewer's note is free text: a Unicode line separator in it must not make every
    honest downloaded copy of the ledger fail verification (nor split a row in two)."""
    [(first, code), (second, _)] = await _members(node_pool, node_config, devices, 2)
    await A.approve(node_pool, node_config, first, actor_id=None, ip=None, code=code,
                    note=f"called{sep}her")
    await A.deny(node_pool, second, actor_id=None, ip=None, note="not her")
    admin = devices()
    _, login = await admin.login("ada")
    await A.approve(node_pool, node_config, login["request_id"], actor_id=None, ip=None,
                    code=login["code"])
    status, text = await admin.get("/admin/approvals/ledger.txt")
    assert status == 200 and f"called{sep}her" in text
    entries, problems = ledger.parse(text)
    assert problems == [] and ledger.verify(entries) == [] and len(entries) == 3
    assert entries[0]["note"] == f"called{sep}her"
    out = tmp_path / "ledger.txt"
    out.write_text(text, encoding="utf-8")
    result = await wb("session", "ledger", "--verify", "--input", str(out))
    assert result.exit_code == 0 and "ledger ok: 3 rows" in result.output, result.output


def _chain(n: int = 3) -> list[dict]:
    entries, prev = [], ledger.GENESIS
    for seq in range(1, n + 1):
        e = {"seq": seq, "at": f"2026-01-0{seq}T10:00:00.000000+00:00", "request_id": f"r{seq}",
             "member_id": f"u{seq}", "member": f"m{seq}", "reviewer_id": None,
             "reviewer": ledger.OPERATOR, "capacity": "operator", "decision": "denied",
             "note": ""}
        e["prev_hash"], e["hash"] = prev, ledger.entry_hash(prev, e)
        prev = e["hash"]
        entries.append(e)
    return entries


def test_a_downloaded_copy_with_fields_the_hash_does_not_cover_is_refused():
    """A doctored copy can add a field to a row ("approved_by": an admin's name) or repeat
    a key so a reader sees one value and the verifier another; the hash covers neither, so
    verification must refuse the row instead of calling the copy intact."""
    text = ledger.render(_chain())
    entries, problems = ledger.parse(text)
    assert problems == [] and ledger.verify(entries) == []  # the honest copy
    lines = text.splitlines()
    row2 = json.loads(lines[5])
    assert row2["seq"] == 2
    # an extra field on row 2
    extra = json.dumps({**row2, "vouched_by": "ada"}, sort_keys=True, separators=(",", ":"))
    entries, problems = ledger.parse("\n".join(lines[:5] + [extra] + lines[6:]) + "\n")
    assert any(p.startswith("row 2:") for p in problems + ledger.verify(entries)), problems
    # the same key twice: a reader sees "approved", json.loads keeps the last ("denied")
    doubled = lines[5].replace('"decision":"denied"',
                               '"decision":"approved","decision":"denied"')
    assert doubled != lines[5]
    entries, problems = ledger.parse("\n".join(lines[:5] + [doubled] + lines[6:]) + "\n")
    assert any(p.startswith("row 2:") for p in problems + ledger.verify(entries)), problems


async def test_a_lone_surrogate_in_a_json_body_is_a_400_and_decides_nothing(devices,
                                                                          node_pool):
    """JSON may escape half a UTF-16 pair ("\\ud800"): Python keeps it, UTF-8 cannot encode
    it. A reviewer's note (or any field) carrying one must be a clear 400, not a 500 after
    the code was checked."""
    admin = await bootstrap_admin(devices)
    rita = await _reviewer(devices, admin, node_pool)
    invite = await admin.invite()
    await devices().register("bob", token=invite["token"])
    laptop = devices()
    _, login = await laptop.login("bob")
    rid = login["request_id"]
    raw = json.dumps({"code": login["code"], "note": "called \ud800 him"}).encode()
    assert b"\\ud800" in raw  # json.dumps escapes it: the body is plain ASCII
    headers = {**JSON, "Content-Type": "application/json", "X-CSRF-Token": await rita.csrf()}
    for path in (f"{QUEUE}/{rid}/approve", f"{QUEUE}/{rid}/deny"):
        async with rita.session.post(rita.base + path, data=raw, headers=headers) as r:
            body = await r.json()
            assert r.status == 400 and body["error"]["code"] == "invalid_json", (path, body)
    assert await laptop.whoami() == "pending"
    assert await node_pool.fetchval("SELECT count(*) FROM approval_ledger") == 0
    assert await node_pool.fetchval("SELECT attempts FROM auth_requests WHERE id = $1",
                                    rid) == 0


async def test_a_demoted_reviewer_and_a_newly_promoted_admin_are_seen_at_once(devices,
                                                                             node_pool):
    """Roles and admin status are read on every request and at decision time: a reviewer
    whose role an admin takes away is refused on her very next post from the same open
    session, and a member promoted to admin while his sign-in waits is no longer hers to
    approve (nor, once demoted again, out of reach)."""
    admin = await bootstrap_admin(devices)
    rita = await _reviewer(devices, admin, node_pool)
    rita_id = await node_pool.fetchval("SELECT id FROM users WHERE username = 'rita'")
    invite = await admin.invite()
    _, bob = await devices().register("bob", token=invite["token"])
    laptop = devices()
    _, login = await laptop.login("bob")
    rid, code = login["request_id"], login["code"]
    # promoted while waiting: an admin's sign-in, not a reviewer's to decide
    status, _ = await admin.post_json(f"/admin/profiles/{bob['user_id']}/promote")
    assert status == 200
    status, body = await rita.post_json(f"{QUEUE}/{rid}/approve", {"code": code})
    assert status == 403 and body["error"]["code"] == "admin_sign_in"
    assert (await rita.get_json(QUEUE))[1]["pending"] == []
    status, _ = await admin.post_json(f"/admin/profiles/{bob['user_id']}/demote")
    assert status == 200
    assert [r["id"] for r in (await rita.get_json(QUEUE))[1]["pending"]] == [rid]
    # the role taken away: her open session is refused at once, everywhere on the queue
    status, _ = await admin.post_json(f"/admin/profiles/{rita_id}/revoke-reviewer")
    assert status == 200
    for path, payload in ((f"{QUEUE}/{rid}/approve", {"code": code}),
                          (f"{QUEUE}/{rid}/deny", {})):
        status, body = await rita.post_json(path, payload)
        assert status == 403 and body["error"]["code"] == "reviewer_only", path
    status, body = await rita.get_json(QUEUE)
    assert status == 403 and body["error"]["code"] == "reviewer_only"
    assert await laptop.whoami() == "pending"
    assert await node_pool.fetchval("SELECT count(*) FROM approval_ledger") == 0
    assert await node_pool.fetchval("SELECT attempts FROM auth_requests WHERE id = $1",
                                    rid) == 0


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_a_copy_saved_with_any_line_end_still_verifies(eol):
    entries = _chain()
    entries[1]["note"] = "called\u2028her\x85twice"
    entries[1]["hash"] = ledger.entry_hash(entries[1]["prev_hash"], entries[1])
    entries[2]["prev_hash"] = entries[1]["hash"]
    entries[2]["hash"] = ledger.entry_hash(entries[2]["prev_hash"], entries[2])
    parsed, problems = ledger.parse(ledger.render(entries).replace("\n", eol))
    assert problems == [] and ledger.verify(parsed) == [] and len(parsed) == 3
    assert parsed[1]["note"] == "called\u2028her\x85twice"
