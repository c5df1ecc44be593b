"""Only our own chain speaks for our members.

A bundle signed for origin X may carry only X's records, and the protocol checks that;
but a record's actor references (``Created-By``, ``Invited-By``, a vouch's ``Inviter`` and
``Invitee``) could still name OUR origin and one of our user ids, and the importer would
attribute the record to our member. This check refuses such a bundle before anything of
it is applied (stable code ``impersonation``; the sync job log keeps the code). A
comment's ``Request`` may name our origin: members elsewhere comment on our public
requests; that is a reference to a thing, not a claim of who spoke.
"""

from __future__ import annotations

from protocol.verify import VerifiedBundle

#: Headers that say WHO did something; none may name the importing node's origin.
ACTOR_HEADERS = ("Created-By", "Invited-By", "Inviter", "Invitee")

IMPERSONATION = "impersonation"


def claims_on(our_origin: str, vb: VerifiedBundle) -> list[tuple[str, str, str]]:
    """(path, header, value) of every actor reference in ``vb`` that names our origin."""
    if vb.origin == our_origin:
        return []
    found = []
    for path, rec in vb.records:
        for header in ACTOR_HEADERS:
            value = rec.get(header)
            if value and value.partition("/")[0].strip() == our_origin:
                found.append((path, header, value))
    return found


def refuse_claims_on_our_members(our_origin: str, vb: VerifiedBundle) -> None:
    """Raise ``SyncError("impersonation")`` when another origin speaks for our members."""
    from node.sync.errors import SyncError

    claims = claims_on(our_origin, vb)
    if claims:
        path, header, value = claims[0]
        raise SyncError(IMPERSONATION,
                        f"origin {vb.origin} signed {len(claims)} record(s) naming this "
                        f"node's members as actors (first: {path} {header}: {value}); "
                        "only this node speaks for its members. Nothing was applied.")
