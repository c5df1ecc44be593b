"""The approval ledger (#23): every decision (own device, admin, reviewer, operator) is
one row of a hash chain; concurrent decisions make one unbroken chain; an edited,
deleted or reordered row is found with its row number; admins download it with its
checksum; its notes never leave the node."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner

from node import typedefs as T
from node.auth import approval as A
from node.auth import ledger
from node.auth import service as svc
from node.copilot import service as CS
from node.sync.service import run_export
from ops.cli import root
from protocol.containers import to_targz
from tests.factories import create_user
from tests.node.auth.helpers import bootstrap_admin

MARKER = "LEDGER-PRIVATE-NOTE-7c1"


@pytest.fixture
def wb(node_db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("WB_DATABASE_URL", node_db_url)
    monkeypatch.setenv("WB_DATA_DIR", str(tmp_path / "cli"))
    monkeypatch.chdir(tmp_path)

    async def run(*args: str):
        return await asyncio.to_thread(CliRunner().invoke, root, list(args))

    return run


async def _members(node_pool, node_config, devices, n: int) -> list[tuple[str, str]]:
    """n members, each with a waiting sign-in: [(request_id, code)]."""
    admin = await bootstrap_admin(devices)
    out = []
    for i in range(n):
        invite = await admin.invite()
        status, _ = await devices().register(f"m{i}", token=invite["token"])
        assert status == 201
        start = await svc.start_login(node_pool, node_config, f"m{i}", ip=None)
        out.append((start.request_id, start.code))
    return out


async def _decisions(node_pool, node_config, devices, n: int = 6):
    """n decisions by the operator (approve and deny, alternately), each with a note."""
    waiting = await _members(node_pool, node_config, devices, n)
    for i, (rid, code) in enumerate(waiting):
        if i % 2:
            await A.deny(node_pool, rid, actor_id=None, ip=None, via="cli", note=f"n{i}")
        else:
            await A.approve(node_pool, node_config, rid, actor_id=None, ip=None, code=code,
                            via="cli", note=f"n{i}")
    return waiting


async def test_concurrent_decisions_make_one_unbroken_chain(node_pool, node_config, devices):
    waiting = await _members(node_pool, node_config, devices, 12)
    admin_id = await node_pool.fetchval("SELECT id FROM users WHERE username='ada'")

    async def decide(i: int, rid: str, code: str):
        if i % 3 == 0:
            return await A.deny(node_pool, rid, actor_id=admin_id, ip=None)
        return await A.approve(node_pool, node_config, rid, actor_id=admin_id if i % 2 else None,
                               ip=None, code=code)

    results = await asyncio.gather(*(decide(i, rid, code)
                                     for i, (rid, code) in enumerate(waiting)))
    assert sorted(d.ledger_seq for d in results) == list(range(1, 13))
    entries, problems = await ledger.verify_database(node_pool)
    assert problems == [] and [e["seq"] for e in entries] == list(range(1, 13))
    assert {e["request_id"] for e in entries} == {rid for rid, _ in waiting}
    assert entries[0]["prev_hash"] == ledger.GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(entries, entries[1:], strict=False))
    # the audit log names each decision's row too
    seqs = await node_pool.fetch("SELECT (details->>'ledger')::int AS seq FROM audit_log "
                                 "WHERE action IN ('login.approve','login.deny')")
    assert sorted(r["seq"] for r in seqs) == list(range(1, 13))


@pytest.mark.parametrize("tamper, row", [
    ("UPDATE approval_ledger SET note = 'rewritten' WHERE seq = 3", 3),
    ("UPDATE approval_ledger SET decision = 'approved' WHERE seq = 2", 2),
    ("UPDATE approval_ledger SET reviewer = 'someone' WHERE seq = 5", 5),
    ("UPDATE approval_ledger SET at = at + interval '1 second' WHERE seq = 1", 1),
    ("DELETE FROM approval_ledger WHERE seq = 4", 4),
    ("DELETE FROM approval_ledger WHERE seq = 6", 6),  # the last one: the audit log knows
    # reorder: rows 2 and 3 swap places
    ("UPDATE approval_ledger SET seq = 1000 WHERE seq = 2; "
     "UPDATE approval_ledger SET seq = 2 WHERE seq = 3; "
     "UPDATE approval_ledger SET seq = 3 WHERE seq = 1000", 2),
])
async def test_tampering_is_found_with_the_row_number(node_pool, node_config, devices, wb,
                                                      tamper, row):
    await _decisions(node_pool, node_config, devices)
    result = await wb("session", "ledger", "--verify")
    assert result.exit_code == 0 and "ledger ok: 6 rows" in result.output, result.output
    await node_pool.execute(tamper)
    _, problems = await ledger.verify_database(node_pool)
    assert problems and problems[0].startswith(f"row {row}:"), problems
    result = await wb("session", "ledger", "--verify")
    assert result.exit_code == 1 and f"ledger: row {row}:" in result.output, result.output


async def test_a_rehashed_forgery_still_breaks_the_next_row(node_pool, node_config, devices):
    """Rewriting a row AND its hash moves the break to the following row."""
    await _decisions(node_pool, node_config, devices)
    row = dict(await node_pool.fetchrow("SELECT * FROM approval_ledger WHERE seq = 2"))
    row["decision"] = "approved"
    forged = ledger.entry_hash(row["prev_hash"], ledger.as_entry(row))
    await node_pool.execute("UPDATE approval_ledger SET decision='approved', hash=$1 "
                            "WHERE seq = 2", forged)
    _, problems = await ledger.verify_database(node_pool)
    assert problems == ["row 3: does not follow row 2 (a row was deleted, inserted or "
                        "reordered)"]


async def test_admin_downloads_the_ledger_with_its_checksum(node_pool, node_config, devices,
                                                            wb, tmp_path):
    await _decisions(node_pool, node_config, devices, 3)
    admin = devices()
    _, login = await admin.login("ada")
    await A.approve(node_pool, node_config, login["request_id"], actor_id=None, ip=None,
                    code=login["code"])
    status, text = await admin.get("/admin/approvals/ledger.txt")
    assert status == 200
    async with admin.session.get(admin.base + "/admin/approvals/ledger.txt") as r:
        head = r.headers["X-Ledger-Head"]
        assert r.headers["Content-Type"].startswith("text/plain")
        assert "attachment" in r.headers["Content-Disposition"]
        assert r.headers["X-Ledger-Rows"] == "4"
    assert f"# sha256-chain-head: {head}" in text and "# rows: 4" in text
    status, page = await admin.get("/admin/sessions")
    assert f"4 decisions recorded; chain head <code>{head}</code>" in page
    entries, problems = ledger.parse(text)
    assert problems == [] and ledger.verify(entries) == [] and entries[-1]["hash"] == head
    status, body = await admin.get_json("/admin/approvals/ledger.txt")
    assert body["head"] == head and body["problems"] == [] and len(body["entries"]) == 4
    # the CLI writes the same text, and checks a downloaded copy
    out = tmp_path / "ledger.txt"
    result = await wb("session", "ledger", "--output", str(out))
    assert result.exit_code == 0 and head in result.output
    assert out.read_text() == text
    result = await wb("session", "ledger", "--verify", "--input", str(out))
    assert result.exit_code == 0 and f"chain head {head}" in result.output
    out.write_text(text.replace('"note":"n1"', '"note":"n9"'))
    result = await wb("session", "ledger", "--verify", "--input", str(out))
    assert result.exit_code == 1 and "ledger: row 2: altered" in result.output
    lines = text.splitlines()
    out.write_text("\n".join(lines[:5] + lines[6:]) + "\n")  # row 2 cut out
    result = await wb("session", "ledger", "--verify", "--input", str(out))
    assert result.exit_code == 1 and "row 2:" in result.output
    result = await wb("session", "ledger")
    assert result.exit_code == 0 and result.output == text
    result = await wb("session", "ledger", "--input", str(out))
    assert result.exit_code == 2


async def test_each_kind_of_decision_is_in_the_ledger(node_pool, node_config, devices):
    admin = await bootstrap_admin(devices)
    phone = devices()
    _, login = await phone.login("ada")  # approved by ada's first device
    status, _ = await admin.post_json("/auth/approve", {"request_id": login["request_id"],
                                                        "code": login["code"]})
    assert status == 200
    laptop = devices()
    _, login = await laptop.login("ada")
    status, _ = await admin.post_json(f"/admin/sessions/{login['request_id']}/approve",
                                      {"note": "by the admin page"})
    assert status == 200
    tablet = devices()
    _, login = await tablet.login("ada")
    status, _ = await admin.post_json("/auth/deny", {"request_id": login["request_id"]})
    assert status == 200
    rows = await node_pool.fetch("SELECT capacity, decision, reviewer, note "
                                 "FROM approval_ledger ORDER BY seq")
    assert [tuple(r) for r in rows] == [("own_device", "approved", "ada", ""),
                                        ("admin", "approved", "ada", "by the admin page"),
                                        ("own_device", "denied", "ada", "")]


async def test_ledger_notes_never_leave_the_node(node_pool, node_config, devices, node_client):
    admin = await bootstrap_admin(devices)
    await node_pool.execute("UPDATE users SET sync_scope = 'public'")
    status, _ = await admin.post_json("/api/requests", {"title": "Public ladder",
                                                        "description": "x",
                                                        "sync_scope": "public"})
    assert status == 201
    invite = await admin.invite()
    await devices().register("mled", token=invite["token"])
    laptop = devices()
    _, login = await laptop.login("mled")
    status, _ = await admin.post_json(f"/admin/sessions/{login['request_id']}/approve",
                                      {"code": login["code"], "note": f"met {MARKER}"})
    assert status == 200
    assert MARKER in await node_pool.fetchval("SELECT note FROM approval_ledger")
    app = node_client.server.app
    res = await run_export(node_pool, app[T.config_key], snapshot=True)
    blob = res.envelope + to_targz(res.bundle)
    assert b"Public ladder" in blob and MARKER.encode() not in blob
    for path in ("/feeds/requests.atom", "/", "/api/requests?status=all", "/admin/audit",
                 "/admin/sessions", "/members"):
        status, body = await admin.get(path)
        assert MARKER not in body, path
    ctx = CS.ToolContext(node_pool, node_config, None, "cli")
    for name in ("triage_requests", "suggest_scope_changes", "sync_preview"):
        out = await CS.run_tool(ctx, name, {}, rate_limited=False)
        assert MARKER not in repr(out), name


async def test_racing_deciders_on_one_sign_in_leave_one_decision(node_pool, node_config,
                                                                 devices):
    """A reviewer approving while an admin denies (and the operator approves): one wins,
    the others get a 409, and the ledger holds exactly one row."""
    [(rid, code)] = await _members(node_pool, node_config, devices, 1)
    invite_admin = await node_pool.fetchval("SELECT id FROM users WHERE username='ada'")
    rita = await create_user(node_pool, "rita")
    await node_pool.execute("INSERT INTO member_roles (user_id, role) VALUES ($1, 'reviewer')",
                            rita)
    results = await asyncio.gather(
        A.approve(node_pool, node_config, rid, actor_id=rita, ip=None, code=code,
                  vouch=A.Voucher(rita, False, True, False)),
        A.deny(node_pool, rid, actor_id=invite_admin, ip=None),
        A.approve(node_pool, node_config, rid, actor_id=None, ip=None, code=code),
        return_exceptions=True)
    won = [r for r in results if isinstance(r, A.Decision)]
    lost = [r for r in results if not isinstance(r, A.Decision)]
    assert len(won) == 1 and len(lost) == 2, results
    assert all(getattr(e, "status", None) == 409 for e in lost), lost
    entries, problems = await ledger.verify_database(node_pool)
    assert problems == [] and len(entries) == 1
    assert entries[0]["decision"] == won[0].status


async def test_the_operator_decides_with_a_note_from_the_shell(node_pool, node_config, devices,
                                                               wb):
    [(first, code), (second, _)] = await _members(node_pool, node_config, devices, 2)
    result = await wb("session", "approve", first, "--code", code, "--note", "phoned her")
    assert result.exit_code == 0, result.output
    result = await wb("session", "deny", second, "--note", "x" * 501)
    assert result.exit_code != 0  # a note over 500 characters: nothing decided
    assert await node_pool.fetchval("SELECT status FROM auth_requests WHERE id=$1",
                                    second) == "pending"
    result = await wb("session", "deny", second, "--note", "not her")
    assert result.exit_code == 0, result.output
    rows = await node_pool.fetch("SELECT reviewer, reviewer_id, capacity, decision, note "
                                 "FROM approval_ledger ORDER BY seq")
    assert [tuple(r) for r in rows] == [("(operator)", None, "operator", "approved",
                                         "phoned her"),
                                        ("(operator)", None, "operator", "denied", "not her")]
