"""Hub errors with stable codes, rendered as {"error": {"code", "message"}} (or a page)."""

from __future__ import annotations


class HubError(Exception):
    def __init__(self, status: int, code: str, message: str, *, extra: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}


#: Hub-level codes (the protocol library's codes are used as they are for verification).
HUB_ERROR_CODES: dict[str, str] = {
    "unauthorized": "missing or unknown bearer token (401)",
    "peer_blocked": "the peer is blocked by the operator (403)",
    "origin_blocked": "the bundle's origin is on the blocklist (403)",
    "rate_limited": "too many pushes from this peer; retry after Retry-After seconds (429)",
    "bundle_too_large": "request body exceeds the hub's size limit (413)",
    "unsupported_media_type": "Content-Type is neither the CBOR envelope nor tar.gz (415)",
    "equivocation": "another bundle with the same origin and sequence is already stored (409)",
    "future_cursor": "since= is beyond the newest hub sequence (400)",
    "outdated_cursor": "since= is before the retained range; start from a snapshot (410)",
    "invalid_cursor": "since= or limit= is not a non-negative integer (400)",
    "invalid_subscription": "subscription fields are missing or malformed (400)",
    "consumer_too_slow": "stream consumer fell too far behind and was disconnected",
    "csrf_failed": "the admin form lacks a valid CSRF token (403)",
    "login_required": "the admin page needs an admin session (401)",
    "not_found": "no such resource (404)",
    "unknown_peer": "v1: no peer of that name (404)",
    "peer_key_mismatch": "v1: the bundle waits until its key is approved (400, pending_id)",
    "public_key_mismatch": "v1: X-WB-Public-Key is not the bundle's signing key (400)",
    "invalid_public_key": "v1: X-WB-Public-Key is not base64 of 32 bytes (400)",
    "invalid_peer": "v1 auto-registration: the name is taken or invalid (400)",
    "malformed_multipart": "v1: the multipart body cannot be read (400)",
    "missing_field": "v1: the form has no bundle file field (422)",
    "verifier_unavailable": "a verification process died; retry the push (503)",
    "no_policy": "the route declares no access policy, so it is refused (403)",
    "metrics_token_required": "WB_METRICS_TOKEN is set and was not sent as a bearer token (401)",
    "metrics_loopback_only": "no WB_METRICS_TOKEN is set and the client is not local (403)",
    "invalid_proof_request": "a /tlog/proof query parameter is missing or malformed (400)",
    "unknown_tree_size": "this hub signed no checkpoint of the asked tree size (404)",
    "not_in_log": "no transparency-log leaf for that hub_seq or origin+sequence (404)",
    "not_yet_in_checkpoint": "the entry is logged but after the asked checkpoint (404)",
}
