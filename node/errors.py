"""Domain errors with stable codes, mapped to HTTP answers by the error middleware.

Every code the node answers is registered once in :data:`NODE_ERROR_CODES` with its usual
HTTP status and its meaning; ``docs/api.md`` ("Error codes") lists them all and
``tests/test_error_codes.py`` checks both, and that every code raised in ``node/`` is
here. The protocol library's codes (``protocol.errors.ERROR_CODES``) pass through as they
are. In tests and under ``python3 -X dev`` an unknown code is refused at once
(``service.errors.STRICT``); in production it is answered as given, never turned into a 500.
"""

from __future__ import annotations

from typing import Any

from service.errors import CodedError, code_checker

#: code -> (usual HTTP status, meaning). Sync refusals (``node.sync.errors.SyncError``)
#: are here too, with the status the views give them.
NODE_ERROR_CODES: dict[str, tuple[int, str]] = {
    "account_disabled": (409, "Enable the account before promoting it."),
    "address_changed": (409, "This address is no longer the one in your notification settings."),
    "admin_only": (403, "Only an admin may moderate comments."),
    "admin_required": (403, "Only an admin may review publication requests."),
    "admin_sign_in": (403, "An admin's sign-in is approved by another admin or the "
                           "admin's own device, never by a reviewer."),
    "already_completed": (409, "This request is already completed."),
    "already_revoked": (409, "key ... of origin ... is already revoked"),
    "already_signed_in": (409, "Sign out before registering a new member."),
    "avatar_not_found": (404, "No such avatar."),
    "bad_confirm_link": (404, "This confirmation link is not valid."),
    "bad_unsubscribe_link": (404, "This unsubscribe link is not valid."),
    "bundle_too_large": (413, "bundle is too large for this node (...); WB_MAX_BUNDLE_BYTES is "
        "..."),
    "cannot_change_scope": (403, "Only the owner or an admin may change the scope of this ...."),
    "cannot_comment": (403, "Comments are closed on this request."),
    "cannot_complete": (403, "Only the person who asked, or an admin, may complete this."),
    "cannot_promote": (403, "Only the comment's author or an admin may promote it."),
    "cannot_reopen": (403, "Only the request's author or an admin may reopen it."),
    "cannot_tag": (403, "Only the request's author or an admin may tag it."),
    "code_required": (400, "Enter the code shown on the other device."),
    "comment_already_promoted": (409, "This comment is a request already."),
    "comment_not_found": (404, "No such comment."),
    "comment_remote": (409, "A comment from another community cannot be promoted here."),
    "confirm_link_expired": (410, "This confirmation link has expired; ask for a new one in your "
        "notification settings."),
    "confirm_too_soon": (429, "A confirmation link was sent less than a minute ago; check your "
        "inbox first."),
    "confirmation_required": (400, "Type rotate in the confirmation field to rotate the key."),
    "copilot_disabled": (403, "The copilot is switched off; an admin can switch it on at "
        "/admin/dedalus."),
    "copilot_unavailable": (404, "The copilot is not available on this node."),
    "csrf_failed": (403, "The form expired or did not come from this site. Reload the page and "
        "try again."),
    "draft_limit": (409, "You keep ... drafts already; publish or delete one first."),
    "draft_not_found": (404, "No such draft."),
    "ends_at_past": (400, "The end of a pin lies in the future."),
    "equivocation": (409, "The origin signed two different bundles with the same sequence; "
        "refused and recorded for the operator."),
    "empty_message": (400, "Write a message first."),
    "gateway_error": (502, "The AI gateway answered with an HTTP error."),
    "gateway_key_missing": (502, "No API key is set for the AI gateway (an admin sets "
        "it on /admin/dedalus)."),
    "gateway_key_rejected": (502, "The AI gateway rejected the API key."),
    "gateway_loop": (502, "The assistant kept calling tools without answering; stopped."),
    "gateway_malformed": (502, "The AI gateway's answer could not be read."),
    "gateway_not_configured": (502, "No AI gateway is configured on this node."),
    "gateway_rate_limited": (502, "The AI gateway is rate limiting this node."),
    "gateway_stream_broken": (502, "The AI gateway's stream broke off."),
    "gateway_timeout": (502, "The AI gateway did not answer in time."),
    "gateway_unreachable": (502, "The AI gateway cannot be reached."),
    "house_manager_only": (403, "Only house managers (and admins) keep recurring requests."),
    "http_error": (400, "Another HTTP error of the web framework."),
    "impersonation": (409, "An imported record speaks for one of this node's own members; "
        "refused."),
    "internal_error": (500, "Something went wrong on the node; it was logged."),
    "invalid_account": (400, "Some fields need attention."),
    "invalid_arguments": (400, "A copilot tool was called with missing, unknown or malformed "
        "arguments."),
    "invalid_avatar": (400, "The photo is not a PNG, JPEG or WebP image Pillow can read."),
    "invalid_cadence": (400, "Choose daily, weekly or monthly."),
    "invalid_characters": (400, "The input contains characters that cannot be stored (a NUL "
        "byte)."),
    "invalid_colour": (400, "A colour is #rrggbb."),
    "invalid_comment": (400, "Write something first."),
    "invalid_cursor": (400, "That page link is not valid."),
    "invalid_depth": (400, "Depth must be a whole number from 1 to ...."),
    "invalid_draft": (400, "Please fix the highlighted fields."),
    "invalid_email": (400, "That contact email does not look right."),
    "invalid_ends_at": (400, "ends_at is an ISO date or date-time."),
    "invalid_feedback": (400, "Feedback is up or down."),
    "invalid_field": (400, "... must be text."),
    "invalid_item": (400, "Unknown record kind."),
    "invalid_json": (400, "The body must be a JSON object."),
    "invalid_key_id": (400, "... is not a 16-hex key id"),
    "invalid_limit": (400, "limit must be between 1 and ...."),
    "invalid_mode": (400, "Choose draft (for review) or publish."),
    "invalid_month_day": (400, "A day of the month, 1 to 31."),
    "invalid_page": (400, "The page number must be a positive integer."),
    "invalid_peer": (400, "Give the peer a short name (letters, digits, - _ .)."),
    "invalid_position": (400, "The position is a whole number from 1 to ...."),
    "invalid_public_scope": (400, "mode must be one of members, admins, off."),
    "invalid_recurring": (400, "Please fix the highlighted fields."),
    "invalid_request": (400, "Describe what you need help with."),
    "invalid_request_id": (400, "Name the request to pin."),
    "invalid_role": (400, "Unknown role filter (admin or member)."),
    "invalid_scope": (400, "Scope must be private or public."),
    "invalid_status": (400, "status must be one of ... or all."),
    "invalid_tag": (400, "A tag is 1-32 lower-case letters, digits or hyphens."),
    "invalid_time_of_day": (400, "A time of day such as 08:30."),
    "invalid_username": (400, "Choose a username of 2-32 letters, digits, '.', '_' or '-'."),
    "invalid_weekdays": (400, "Choose at least one day of the week."),
    "invite_busy": (409, "This invite could not be used just now; try again."),
    "invite_disabled": (410, "This invite was withdrawn by its creator."),
    "invite_expired": (410, "This invite has expired. Ask for a new one."),
    "invite_required": (403, "This node is invite-only: open the invite link you were given."),
    "invite_unknown": (404, "This invite link is not valid. Ask for a new one."),
    "invite_used_up": (410, "This invite has already been used up."),
    "last_admin": (409, "This is the last admin of the node: promote another member first, then "
        "try again."),
    "login_required": (401, "Sign in first."),
    "malformed_body": (400, "The form data could not be read (malformed body)."),
    "mcp_origin_refused": (403, "Requests from this origin are refused."),
    "mcp_token_invalid": (401, "This MCP token is unknown, revoked, or its admin is no longer an "
        "admin."),
    "mcp_token_required": (401, "Send an admin MCP token: Authorization: Bearer <token>."),
    "mcp_unsupported_version": (400, "Unsupported MCP protocol version ...."),
    "member_not_found": (404, "No such local member."),
    "message_not_found": (404, "No such answer."),
    "method_not_allowed": (405, "The route does not take this HTTP method."),
    "metrics_loopback_only": (403, "No WB_METRICS_TOKEN is set and the client is not local."),
    "metrics_token_required": (401, "WB_METRICS_TOKEN is set and was not sent as a bearer token."),
    "no_policy": (403, "This route has no declared access policy."),
    "no_relay": (409, "No mail relay is configured: set WB_SMTP_URL."),
    "not_auditable": (409, "peer ... is not a v2 hub: only v2 hubs keep a transparency log"),
    "not_completed": (409, "Only a completed request can be reopened."),
    "not_found": (404, "This invite has no photo."),
    "not_open": (409, "This request is not open any more."),
    "not_revoked": (409, "key ... of origin ... is not revoked"),
    "note_too_long": (400, "A pin's note has at most ... characters."),
    "nothing_selected": (400, "Select at least one record."),
    "own_key": (409, "... is this node's current signing key; rotate it first (wb keys rotate), "
        "then revoke the old one"),
    "own_sign_in": (403, "Your own sign-in is approved from your own device, an admin "
                         "or a reviewer, not from the reviewers' queue."),
    "payload_too_large": (413, "The request body is over the node's size limit."),
    "peer_exists": (409, "a peer named ... already exists"),
    "peer_unreachable": (400, "... is not a directory"),
    "pending_limit": (429, "A device waiting for approval may post at most ... requests; wait "
        "for approval."),
    "photo_too_large": (413, "The photo is larger than ... bytes."),
    "photo_type": (400, "The photo must be a PNG, JPEG, GIF or WebP image."),
    "pin_forbidden": (403, "Only admins pin requests."),
    "pin_limit_reached": (409, "At most ... requests can be pinned; unpin one first."),
    "pin_not_found": (404, "This request is not pinned."),
    "proposal_not_found": (404, "No such pending proposal."),
    "public_scope_off": (403, "This node publishes nothing (SYNC_PUBLIC_SCOPE=off); records "
        "cannot be made public."),
    "publication_request_decided": (409, "This request was already ...."),
    "publication_request_not_found": (404, "No such publication request."),
    "rate_limited": (429, "Too many attempts; wait a minute."),
    "record_gone": (409, "The record no longer exists."),
    "recurring_limit": (409, "You keep ... recurring requests already; delete one first."),
    "recurring_not_found": (404, "No such recurring request."),
    "relay_failed": (502, "The mail relay refused or could not be reached."),
    "remote_record": (403, "Records from other nodes are read-only here."),
    "request_approved": (409, "This sign-in request is approved already; start a new sign-in."),
    "request_denied": (409, "This sign-in request was denied; start a new sign-in."),
    "request_expired": (409, "This sign-in request expired; start a new sign-in."),
    "request_locked": (409, "Too many wrong codes: this sign-in request is locked."),
    "request_not_found": (404, "No such request."),
    "request_not_open": (409, "Only open requests can be pinned."),
    "reviewer_only": (403, "Only reviewers and admins (and inviters, when enabled) "
                           "approve other members' sign-ins."),
    "revoked_key": (409, "key ... of origin ... is revoked; remove the revocation first (wb sync "
        "keys unrevoke ... ...)"),
    "session_gone": (409, "The device that asked to sign in has signed out or expired; start a "
        "new sign-in there."),
    "session_not_approved": (403, "The feed is for approved members only."),
    "sign_in_closed": (409, "This device's sign-in request is no longer waiting; start a new "
        "sign-in before posting."),
    "skin_not_found": (404, "No such skin file."),
    "tag_colour_contrast": (400, "Neither black nor white text reaches the minimum contrast on "
        "...; choose a lighter or darker colour."),
    "tag_limit": (409, "A community keeps at most ... tags."),
    "tag_not_found": (404, "No such tag."),
    "tags_admin_only": (403, "Only admins manage the tag list."),
    "too_many_tags": (400, "A request carries at most ... tags."),
    "unauthorized": (401, "a registered hub peer's bearer token is required"),
    "unchanged": (409, "'The comment is already ' + ('deleted.' if delete else 'visible.')"),
    "unknown_action": (404, "Unknown action."),
    "unknown_admin": (404, "No active local admin named ...."),
    "unknown_feed": (404, "No such feed."),
    "unknown_invite": (404, "No such invite of yours."),
    "unknown_job": (404, "No such job (is the peer still configured?)."),
    "unknown_key": (404, "That key is not pinned for this peer."),
    "unknown_origin": (404, "this node knows no origin ... (see wb sync keys list)"),
    "unknown_peer": (404, "No peer named ...."),
    "unknown_role": (400, "The role is one of reviewer, house_manager."),
    "unknown_pending": (404, "No such pending bundle."),
    "unknown_request": (404, "No sign-in request ...."),
    "unknown_session": (404, "That session is already closed."),
    "unknown_skin": (400, "No such skin."),
    "unknown_tag": (400, "Not in this community's list: ...."),
    "unknown_tool": (404, "The copilot has no tool of that name."),
    "unknown_user": (404, "There is no member called ... on this node."),
    "use_post": (400, "Repairs run with POST (the Repair button)."),
    "user_not_found": (404, "No such member."),
    "username_taken": (409, "The username ... is taken; choose another."),
    "value_out_of_range": (400, "A number in the input is out of range."),
    "wrong_code": (400, "The verification code does not match this sign-in request."),
    "block_self": (400, "You cannot block yourself."),
    "conversation_not_found": (404, "No such conversation (or not one of yours)."),
    "direct_message_not_found": (404, "No such message (or not one sent to you)."),
    "invalid_message": (400, "Write a message first."),
    "invalid_report": (400, "A reason or note has at most 500 characters."),
    "member_blocked": (409, "You blocked this member; unblock them to write."),
    "message_rate_limited": (429, "You are sending messages too quickly; wait a minute."),
    "message_refused": (403, "This message could not be delivered."),
    "message_streams_limit": (429, "Too many open message pages; close some and reload."),
    "message_self": (400, "You cannot write to yourself."),
    "message_too_long": (400, "A message has at most 4,000 characters."),
    "messages_disabled": (404, "Direct messages are not switched on in this community."),
    "recipient_not_found": (404, "No member by that name."),
    "report_not_found": (404, "No such report."),
    "report_resolved": (409, "This report is resolved already."),
}

check_code = code_checker("node", NODE_ERROR_CODES,
                          "node.errors.NODE_ERROR_CODES and docs/api.md")


class AppError(CodedError):
    """A failure the client caused or may see: status, stable code, human message, and
    the form fields it concerns."""

    def __init__(self, status: int, code: str, message: str,
                 *, fields: dict[str, str] | None = None):
        super().__init__(status, check_code(code), message)
        self.fields = fields or {}


def bad_request(code: str, message: str, **fields: str) -> AppError:
    return AppError(400, code, message, fields=fields)


def text_field(value: Any, name: str) -> str:
    """A form or JSON field that must be text: None (absent) is empty, anything but a
    string is 400 ``invalid_field`` naming the field (a JSON list or number, say)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise bad_request("invalid_field", f"{name} must be a string.", **{name: "Not text."})
    return value


def forbidden(code: str = "forbidden", message: str = "You may not do that.") -> AppError:
    return AppError(403, code, message)


def not_found(code: str = "not_found", message: str = "Not found.") -> AppError:
    return AppError(404, code, message)


def conflict(code: str, message: str) -> AppError:
    return AppError(409, code, message)
