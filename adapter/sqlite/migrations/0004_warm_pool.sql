-- The warm pool (DESIGN section 11): sandboxes of the default spec started
-- ahead, each on a fresh workspace and with no chat. A member's session id
-- is the one its container is labelled with; a claim deletes the member and
-- inserts its session and workspace rows in the same transaction.
CREATE TABLE pool_members (
    session_id   TEXT    NOT NULL PRIMARY KEY,
    -- The fresh workspace it was made on; no two members share one.
    workspace_id TEXT    NOT NULL UNIQUE,
    container_id TEXT,
    image        TEXT    NOT NULL,
    spec_hash    TEXT    NOT NULL,
    -- What the runtime built it from (image id, agent build).
    fingerprint  TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('warming', 'ready')),
    -- A ready member has its container.
    CHECK (status <> 'ready' OR container_id IS NOT NULL)
) STRICT;

-- A claim's pick: the oldest ready member of a spec hash and fingerprint.
CREATE INDEX pool_members_claim
    ON pool_members (spec_hash, fingerprint, created_at) WHERE status = 'ready';
