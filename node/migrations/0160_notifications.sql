-- Notifications: per-member switches and contact address, the durable mail outbox, and
-- the secret of each member's own Atom feed.

CREATE TABLE notification_prefs (
    user_id            text PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    email              text,                 -- where notifications go (may differ from contact_email)
    email_confirmed_at timestamptz,          -- NULL: nothing is ever sent to ``email``
    on_comment         boolean NOT NULL DEFAULT true,   -- a comment on my request
    on_status          boolean NOT NULL DEFAULT true,   -- my request completed or reopened
    on_signin          boolean NOT NULL DEFAULT false,  -- a sign-in waiting for my approval
    on_member_waiting  boolean NOT NULL DEFAULT false,  -- (admins) a new member waiting
    digest             boolean NOT NULL DEFAULT false,  -- daily digest of new open requests
    digest_sent_on     date,                 -- last digest day, so a day is sent at most once
    feed_token_hash    text UNIQUE,          -- sha256 of the member's feed secret; NULL: no feed
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- One row per message. ``idempotency_key`` names the event and the recipient, so a
-- replayed event never queues a second copy; ``state`` walks
-- queued -> sending -> committing -> sent, or to dropped / uncertain:
--   sending     claimed by a worker, before the relay received the message body
--   committing  the body is being handed over (the only window where a crash leaves the
--               outcome unknown: such rows become ``uncertain`` and are never resent
--               automatically; `wb mail retry --uncertain` does it on an operator's word)
--   skipped     nothing to send any more (switch turned off, address gone, comment deleted)
CREATE TABLE mail_outbox (
    id               text PRIMARY KEY,
    idempotency_key  text NOT NULL UNIQUE,
    user_id          text REFERENCES users(id) ON DELETE CASCADE,
    to_addr          text,                 -- fixed at queue time only for confirmation mail
    params           jsonb NOT NULL DEFAULT '{}'::jsonb,
    kind             text NOT NULL,
    state            text NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'sending', 'committing', 'sent', 'dropped',
                                      'uncertain', 'skipped')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    claimed_at       timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE state = 'queued';
CREATE INDEX mail_outbox_state ON mail_outbox (state, created_at DESC);
