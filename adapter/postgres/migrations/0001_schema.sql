-- The whole schema of the PostgreSQL store, as SQLite's 0001-0004 leave it
-- (DESIGN sections 1-2, 11, 13). Times are unix milliseconds UTC (BIGINT),
-- ids and names TEXT, as in the SQLite store, so both decode one way.

-- The deployment this database holds the sessions of (one row): sandboxes
-- are labelled with its id. Every replica on the database reads the same.
CREATE TABLE deployment (
    singleton   INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
    instance_id TEXT    NOT NULL CHECK (length(instance_id) BETWEEN 1 AND 63)
);

-- Sessions: one row per sandbox incarnation of a chat.
CREATE TABLE sessions (
    id             TEXT    NOT NULL PRIMARY KEY,
    chat_id        TEXT    NOT NULL CHECK (length(chat_id) BETWEEN 1 AND 128),
    container_id   TEXT,
    image          TEXT    NOT NULL,
    spec_hash      TEXT    NOT NULL,
    -- What the caller chose over the defaults; a replacement keeps it.
    image_override TEXT,
    env_json       TEXT    NOT NULL DEFAULT '{}'
                   CHECK (jsonb_typeof(env_json::jsonb) = 'object'),
    generation     BIGINT  NOT NULL CHECK (generation >= 1),
    idle_ttl_ms    BIGINT  NOT NULL CHECK (idle_ttl_ms >= 0),
    created_at     BIGINT  NOT NULL,
    last_used_at   BIGINT  NOT NULL,
    expires_at     BIGINT  NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('creating', 'running', 'ended')),
    end_reason     TEXT    CHECK (end_reason IN ('expired', 'hibernated', 'max_lifetime',
                                                 'container_gone', 'spec_changed', 'stopped',
                                                 'create_failed', 'create_interrupted')),
    ended_at       BIGINT,
    -- No foreign key: ended sessions outlive their workspace's row.
    workspace_id   TEXT    NOT NULL,
    -- An ended row says why and when; an active one says neither.
    CHECK ((status = 'ended') = (end_reason IS NOT NULL)),
    CHECK ((status = 'ended') = (ended_at IS NOT NULL)),
    -- A running session has its container.
    CHECK (status <> 'running' OR container_id IS NOT NULL)
);

-- At most one active session per chat, enforced by the database itself,
-- whichever replica inserts.
CREATE UNIQUE INDEX sessions_one_active_per_chat
    ON sessions (chat_id) WHERE status IN ('creating', 'running');

-- A chat's incarnations are numbered once each; also serves max(generation).
CREATE UNIQUE INDEX sessions_chat_generation ON sessions (chat_id, generation);

CREATE INDEX sessions_active_expires_at
    ON sessions (expires_at) WHERE status IN ('creating', 'running');

CREATE INDEX sessions_active_created_at
    ON sessions (created_at) WHERE status IN ('creating', 'running');

CREATE INDEX sessions_ended_at ON sessions (ended_at) WHERE status = 'ended';

CREATE INDEX sessions_active_workspace
    ON sessions (workspace_id) WHERE status IN ('creating', 'running');

-- Workspaces: a chat's files (its volume), kept across sessions and through
-- hibernation.
CREATE TABLE workspaces (
    id             TEXT    NOT NULL PRIMARY KEY,
    chat_id        TEXT    NOT NULL CHECK (length(chat_id) BETWEEN 1 AND 128),
    created_at     BIGINT  NOT NULL,
    -- The session it was made for: undoing that session's create deletes it.
    created_by     TEXT    NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('live', 'deleting')),
    -- Both set while hibernated (no session on it), both NULL otherwise.
    hibernated_at  BIGINT,
    retained_until BIGINT,
    CHECK ((hibernated_at IS NULL) = (retained_until IS NULL))
);

CREATE UNIQUE INDEX workspaces_one_live_per_chat
    ON workspaces (chat_id) WHERE status = 'live';

CREATE INDEX workspaces_created_at ON workspaces (created_at);

CREATE INDEX workspaces_hibernated
    ON workspaces (retained_until) WHERE status = 'live' AND retained_until IS NOT NULL;

-- The warm pool: sandboxes of the default spec started ahead, each on a
-- fresh workspace and with no chat.
CREATE TABLE pool_members (
    session_id   TEXT    NOT NULL PRIMARY KEY,
    workspace_id TEXT    NOT NULL UNIQUE,
    container_id TEXT,
    image        TEXT    NOT NULL,
    spec_hash    TEXT    NOT NULL,
    -- What the runtime built it from (image id, agent build).
    fingerprint  TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('warming', 'ready')),
    CHECK (status <> 'ready' OR container_id IS NOT NULL)
);

CREATE INDEX pool_members_claim
    ON pool_members (spec_hash, fingerprint, created_at) WHERE status = 'ready';
