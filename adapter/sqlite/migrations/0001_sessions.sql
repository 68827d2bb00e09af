-- Sessions: one row per sandbox incarnation of a chat (DESIGN sections 1-2).
-- Times are unix milliseconds UTC, so expiry checks are integer comparisons.
CREATE TABLE sessions (
    id           TEXT    NOT NULL PRIMARY KEY,
    chat_id      TEXT    NOT NULL CHECK (length(chat_id) BETWEEN 1 AND 128),
    container_id TEXT,
    image        TEXT    NOT NULL,
    spec_hash    TEXT    NOT NULL,
    -- What the caller chose over the defaults; a replacement keeps it.
    image_override TEXT,
    env_json     TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(env_json)),
    generation   INTEGER NOT NULL CHECK (generation >= 1),
    idle_ttl_ms  INTEGER NOT NULL CHECK (idle_ttl_ms >= 0),
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('creating', 'running', 'ended')),
    end_reason   TEXT    CHECK (end_reason IN ('expired', 'container_gone', 'spec_changed',
                                               'stopped', 'create_failed', 'create_interrupted')),
    ended_at     INTEGER,
    -- An ended row says why and when; an active one says neither.
    CHECK ((status = 'ended') = (end_reason IS NOT NULL)),
    CHECK ((status = 'ended') = (ended_at IS NOT NULL)),
    -- A running session has its container.
    CHECK (status <> 'running' OR container_id IS NOT NULL)
) STRICT;

-- At most one active session per chat, enforced by the database itself.
-- Queries repeat this exact WHERE so the planner can use the partial index.
CREATE UNIQUE INDEX sessions_one_active_per_chat
    ON sessions (chat_id) WHERE status IN ('creating', 'running');

-- A chat's incarnations are numbered once each; also serves max(generation).
CREATE UNIQUE INDEX sessions_chat_generation ON sessions (chat_id, generation);

-- The cleanup loop's expiry scan.
CREATE INDEX sessions_active_expires_at
    ON sessions (expires_at) WHERE status IN ('creating', 'running');

-- `list_active`, oldest first.
CREATE INDEX sessions_active_created_at
    ON sessions (created_at) WHERE status IN ('creating', 'running');

-- Retention (`purge_ended`).
CREATE INDEX sessions_ended_at ON sessions (ended_at) WHERE status = 'ended';
