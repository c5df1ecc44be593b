"""Hub errors with stable codes, rendered as {"error": {"code", "message"}} (or a page).

Every hub code is registered once in :data:`HUB_ERROR_CODES` with its status and meaning;
``docs/hub-guide.md`` ("Error codes") lists them and ``tests/test_error_codes.py`` checks
that every code raised in ``hub/`` is registered and documented. Verification failures use
the protocol library's codes unchanged. In tests and under ``python3 -X dev`` an unknown
code is refused at once (``service.errors.STRICT``).
"""

from __future__ import annotations

from service.errors import CodedError, code_checker

#: code -> (HTTP status, meaning). ``consumer_too_slow`` is a stream frame (status 0).
HUB_ERROR_CODES: dict[str, tuple[int, str]] = {
    "unauthorized": (401, "missing or unknown bearer token"),
    "peer_blocked": (403, "the peer is blocked by the operator"),
    "origin_blocked": (403, "the bundle's origin is on the blocklist"),
    "revoked_key": (403, "the bundle is signed by a key revoked on this hub"),
    "forbidden": (403, "the web framework refused the request"),
    "rate_limited": (429, "too many pushes from this peer (see `Retry-After`)"),
    "bundle_too_large": (413, "body above the hub's limit"),
    "unsupported_media_type": (415, "neither the CBOR envelope nor tar.gz"),
    "equivocation": (409, "another bundle holds this origin's sequence (`kept_digest`)"),
    "future_cursor": (400, "`since` beyond the head (`head`)"),
    "outdated_cursor": (410, "`since` before the retained range (`oldest`)"),
    "invalid_cursor": (400, "`since`/`limit` not a non-negative integer"),
    "invalid_subscription": (400, "malformed subscription request"),
    "invalid_origin": (400, "the admin form names no origin key id"),
    "origin_ambiguous": (409, "the pending key signed for several origins; name the one"),
    "origin_claim_unconfirmed": (409, "the pending key claims an origin its peer does not "
                                      "hold; confirm the origin to approve it"),
    "consumer_too_slow": (0, "the stream consumer fell behind; reconnect from `seq`"),
    "csrf_failed": (403, "admin form without a valid CSRF token"),
    "login_required": (401, "the admin page needs an admin session"),
    "not_found": (404, "no such resource"),
    "method_not_allowed": (405, "the route does not take this HTTP method"),
    "http_error": (400, "another HTTP error of the web framework"),
    "unknown_peer": (404, "v1: no peer of that name (and `WB_HUB_V1_AUTO_REGISTER` off)"),
    "peer_key_mismatch": (400, "v1: the bundle is parked until its key is approved "
        "(`pending_id` = key id)"),
    "public_key_mismatch": (400, "v1: `X-WB-Public-Key` is not the bundle's signing key"),
    "invalid_public_key": (400, "v1: `X-WB-Public-Key` is not base64 of 32 bytes"),
    "invalid_peer": (400, "v1 auto-registration: the name is taken or not a valid peer name"),
    "malformed_multipart": (400, "v1: the multipart body cannot be read"),
    "missing_field": (422, "v1: the form has no `bundle` file field"),
    "verifier_unavailable": (503, "an ingest process died; nothing of the push was kept; retry"),
    "database_unavailable": (503, "the hub cannot reach its database (see `Retry-After`)"),
    "too_many_connections": (503, "the process is at `WB_MAX_CONNECTIONS`; the connection is "
        "closed"),
    "no_policy": (403, "the route declares no access policy, so it is refused"),
    "metrics_token_required": (401, "WB_METRICS_TOKEN is set and was not sent as a bearer "
                                    "token"),
    "metrics_loopback_only": (403, "no WB_METRICS_TOKEN is set and the client is not local"),
    "invalid_proof_request": (400, "a `/tlog/proof` parameter is missing or malformed"),
    "unknown_tree_size": (404, "no signed checkpoint of that tree size"),
    "not_in_log": (404, "no transparency-log leaf for that `hub_seq` or origin+sequence"),
    "not_yet_in_checkpoint": (404, "the entry is logged after the asked checkpoint "
                                   "(`leaf_index`); retry after the next one"),
    "invalid_characters": (400, "the input contains characters that cannot be stored"),
    "value_out_of_range": (400, "a number in the input is out of range"),
    "internal_error": (500, "something went wrong on the hub; it was logged"),
}

check_code = code_checker("hub", HUB_ERROR_CODES,
                          "hub.errors.HUB_ERROR_CODES and docs/hub-guide.md")


class HubError(CodedError):
    """A hub answer with a registered code; ``extra`` joins the JSON ``error`` object."""

    def __init__(self, status: int, code: str, message: str, *, extra: dict | None = None):
        super().__init__(status, check_code(code), message)
        self.extra = extra or {}
