-- Hub audits (#22): the newest signed checkpoint seen from each hub, the pushes a hub
-- acknowledged (their inclusion is checked), and incidents with their evidence.
CREATE TABLE sync_hub_logs (
    peer        text PRIMARY KEY,        -- sync_peers.name
    verifier    text NOT NULL,           -- note verifier key, pinned at the first audit
    size        bigint NOT NULL DEFAULT 0,
    root        bytea,
    note        bytea,                   -- the newest signed checkpoint, exact bytes
    checked_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sync_hub_acks (
    peer        text NOT NULL,
    hub_seq     bigint NOT NULL,
    origin      text NOT NULL,
    sequence    bigint,
    digest      text NOT NULL,
    acked_at    timestamptz NOT NULL DEFAULT now(),
    included_at timestamptz,             -- proven included in a signed checkpoint
    flagged_at  timestamptz,             -- an incident was recorded for it
    PRIMARY KEY (peer, hub_seq)
);
CREATE INDEX sync_hub_acks_open ON sync_hub_acks (peer) WHERE included_at IS NULL AND flagged_at IS NULL;

CREATE TABLE sync_hub_incidents (
    id          bigserial PRIMARY KEY,
    peer        text NOT NULL,
    kind        text NOT NULL,           -- fork | omission | wrong_leaf | bad_checkpoint | key_changed
    message     text NOT NULL,
    evidence    jsonb NOT NULL,          -- signed notes, leaves and proofs, base64/text
    detected_at timestamptz NOT NULL DEFAULT now()
);
