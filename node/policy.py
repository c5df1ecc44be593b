"""The node's route policy table: who may use each route, checked before any handler.

Default deny: a route missing here is refused (and ``create_app`` refuses to build);
``tests/node/test_policy.py`` walks the router and probes every GET route as an anonymous
and as a half-authenticated device. A device that only knows a username (its sign-in is
not approved yet) is anonymous on ``public`` routes, and on ``device`` routes sees only
its own sign-in request and what it wrote itself.
"""

from __future__ import annotations

from aiohttp import web

from node import typedefs as T
from node import web as W
from node.errors import AppError
from service.policy import Policy, check_metrics, declare, policy_middleware, require_bearer

P = Policy

ROUTES: dict[str, Policy] = {
    # plumbing
    "healthz": P.PUBLIC, "readyz": P.PUBLIC, "openapi": P.PUBLIC, "static": P.PUBLIC,
    "favicon": P.PUBLIC, "llms_txt": P.PUBLIC, "feed_public": P.PUBLIC,
    "skin_file": P.PUBLIC,  # the skins' CSS, like /static
    "sync_checkpoints": P.PUBLIC,  # hub-signed checkpoints for gossip (public statements)
    # a signed or secret token in the URL is the credential (checked in the handler)
    "feed_member": P.PUBLIC, "notifications_confirm": P.PUBLIC,
    "notifications_unsubscribe": P.PUBLIC, "notifications_unsubscribe_post": P.PUBLIC,
    "api_csrf": P.PUBLIC, "metrics": P.METRICS,
    # signing in and registering
    "login": P.PUBLIC, "register": P.PUBLIC, "register_invite": P.PUBLIC,
    "register_invite_photo": P.PUBLIC,  # the invite token in the URL is the credential
    "auth_login": P.DEVICE, "auth_register": P.DEVICE, "auth_logout": P.DEVICE,
    "login_pending": P.DEVICE,
    # the home page and what an unapproved device may write (bound to its sign-in)
    "home": P.DEVICE, "request_create": P.DEVICE, "api_request_create": P.DEVICE,
    "api_requests_pending": P.DEVICE,
    # members
    "auth_devices": P.MEMBER, "auth_approve": P.MEMBER, "auth_deny": P.MEMBER,
    # reviewers (and inviters when enabled) decide OTHER members' sign-ins (checked in
    # node.auth.approval: reviewer_only, own_sign_in, admin_sign_in)
    "review_signins": P.MEMBER, "review_signin_approve": P.MEMBER,
    "review_signin_deny": P.MEMBER, "admin_approvals_ledger": P.ADMIN,
    "invite_new": P.MEMBER, "auth_invites": P.MEMBER, "auth_invite_disable": P.MEMBER,
    "invite_created": P.MEMBER,  # the creator's own new invite (checked in the handler)
    "request_detail": P.MEMBER, "api_request_detail": P.MEMBER, "api_requests": P.MEMBER,
    "comment_create": P.MEMBER, "request_complete": P.MEMBER,
    "api_request_complete": P.MEMBER, "request_scope": P.MEMBER, "comment_scope": P.MEMBER,
    "sync_scope": P.MEMBER, "sync_scope_submit": P.MEMBER,
    "profile": P.MEMBER, "person": P.MEMBER, "members": P.MEMBER, "invite_map": P.MEMBER,
    "invite_map_svg": P.MEMBER, "settings_account": P.MEMBER,
    "settings_account_post": P.MEMBER, "settings_avatar": P.MEMBER,
    "settings_avatar_remove": P.MEMBER, "avatar": P.MEMBER,
    "notifications_settings": P.MEMBER, "notifications_save": P.MEMBER,
    "notifications_address": P.MEMBER, "notifications_feed_new": P.MEMBER,
    "notifications_feed_revoke": P.MEMBER, "settings_skin": P.MEMBER,
    "api_pins": P.MEMBER,
    "drafts": P.MEMBER, "draft_create": P.MEMBER, "draft_detail": P.MEMBER,
    "draft_update": P.MEMBER, "draft_publish": P.MEMBER, "draft_delete": P.MEMBER,
    "api_drafts": P.MEMBER, "api_draft_create": P.MEMBER,
    "comment_promote": P.MEMBER,  # its author or an admin (checked in the service)
    "request_tags": P.MEMBER,  # its author or an admin (checked in the service)
    "tags_css": P.MEMBER, "api_tags": P.MEMBER,
    # house managers and admins (the role is checked in the service)
    "recurring": P.MEMBER, "recurring_create": P.MEMBER, "recurring_detail": P.MEMBER,
    "recurring_update": P.MEMBER, "recurring_pause": P.MEMBER, "recurring_resume": P.MEMBER,
    "recurring_delete": P.MEMBER, "api_recurring": P.MEMBER, "api_recurring_create": P.MEMBER,
    "api_recurring_detail": P.MEMBER,
    "admin_tags": P.ADMIN, "admin_tag_save": P.ADMIN, "admin_tag_delete": P.ADMIN,
    # direct messages (WB_MESSAGES): participants only (checked in the service)
    "messages": P.MEMBER, "message_send": P.MEMBER, "message_new": P.MEMBER,
    "messages_events": P.MEMBER, "message_block": P.MEMBER, "message_unblock": P.MEMBER,
    "message_report": P.MEMBER, "message_thread": P.MEMBER, "message_reply": P.MEMBER,
    "api_messages": P.MEMBER, "api_message_send": P.MEMBER,
    "admin_message_reports": P.ADMIN, "admin_message_report_resolve": P.ADMIN,
    # admins
    "request_reopen": P.MEMBER,  # its author or an admin (checked in the service)
    "comment_delete": P.ADMIN, "comment_restore": P.ADMIN,
    "admin": P.ADMIN, "admin_requests": P.ADMIN, "admin_audit": P.ADMIN,
    "admin_mail": P.ADMIN, "admin_mail_retry": P.ADMIN, "admin_skins": P.ADMIN,
    "sync_review": P.ADMIN, "sync_review_withdraw_all": P.ADMIN, "sync_review_mode": P.ADMIN,
    "sync_review_approve": P.ADMIN, "sync_review_decline": P.ADMIN,
    "sync_control_repair": P.ADMIN, "sync_control_repair_run": P.ADMIN,
    "admin_sessions": P.ADMIN, "admin_session_revoke": P.ADMIN,
    "admin_session_approve": P.ADMIN, "admin_session_deny": P.ADMIN,
    "admin_profiles": P.ADMIN, "admin_profile": P.ADMIN, "admin_profile_action": P.ADMIN,
    "sync_control": P.ADMIN, "sync_control_peer_add": P.ADMIN,
    "sync_control_peer_edit": P.ADMIN, "sync_control_peer_remove": P.ADMIN,
    "sync_control_peer_unpin": P.ADMIN, "sync_control_job_run": P.ADMIN,
    "sync_control_job_pause": P.ADMIN, "sync_control_pending": P.ADMIN,
    "sync_control_rotate_key": P.ADMIN, "sync_public": P.ADMIN,
    "copilot": P.ADMIN, "copilot_send": P.ADMIN, "copilot_stream": P.ADMIN,
    "copilot_clear": P.ADMIN, "copilot_feedback": P.ADMIN, "copilot_decide": P.ADMIN,
    "dedalus": P.ADMIN, "dedalus_key": P.ADMIN, "dedalus_forget": P.ADMIN,
    "dedalus_switch": P.ADMIN,
    "admin_pins": P.ADMIN, "admin_pin_add": P.ADMIN, "request_pin": P.ADMIN,
    "request_unpin": P.ADMIN,
    # bearer tokens: a hub peer's inbox token, an admin's MCP token
    "sync_inbox": P.PEER, "mcp": P.PEER,
    # GET/DELETE /mcp only ever answer 405 with Allow: POST (no server-sent stream here)
    "mcp_get": P.PUBLIC, "mcp_delete": P.PUBLIC,
}

#: The 401 code a bearer route answers when no token was sent at all.
BEARER_CODES = {"sync_inbox": "unauthorized", "mcp": "mcp_token_required",
                "mcp_get": "mcp_token_required", "mcp_delete": "mcp_token_required"}


async def check(request: web.Request, policy: Policy) -> None:
    viewer = W.viewer_of(request)
    if policy is Policy.PUBLIC:
        if viewer is not None and not viewer.active:
            request[T.VIEWER] = None  # an unapproved device is anonymous here
    elif policy is Policy.DEVICE:
        return
    elif policy is Policy.MEMBER:
        W.require_active(request)
    elif policy is Policy.ADMIN:
        W.require_admin(request)
    elif policy is Policy.PEER:
        name = request.match_info.route.resource.name  # type: ignore[union-attr]
        require_bearer(request, BEARER_CODES.get(name or "", "token_required"))
    elif policy is Policy.METRICS:
        check_metrics(request, request.app[T.config_key])
    else:  # pragma: no cover - a new Policy member must be handled here
        raise AppError(403, "no_policy", "This route has no declared access policy.")


middleware = policy_middleware(check, AppError)


def install(app: web.Application) -> None:
    """Attach the table; call after every route is added (``create_app`` does)."""
    declare(app, ROUTES)

