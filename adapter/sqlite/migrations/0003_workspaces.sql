-- Workspaces: a chat's files (its volume), kept across the chat's sessions
-- and through hibernation (DESIGN section 1). Sessions name the workspace
-- they run on, and may end with 'hibernated' or 'max_lifetime'.
CREATE TABLE workspaces (
    id             TEXT    NOT NULL PRIMARY KEY,
    chat_id        TEXT    NOT NULL CHECK (length(chat_id) BETWEEN 1 AND 128),
    created_at     INTEGER NOT NULL,
    -- The session it was made for: undoing that session's create deletes it.
    created_by     TEXT    NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('live', 'deleting')),
    -- Both set while hibernated (no session on it), both NULL otherwise.
    hibernated_at  INTEGER,
    retained_until INTEGER,
    CHECK ((hibernated_at IS NULL) = (retained_until IS NULL))
) STRICT;

-- At most one live workspace per chat, enforced by the database itself.
-- Queries repeat this exact WHERE so the planner can use the partial index.
CREATE UNIQUE INDEX workspaces_one_live_per_chat
    ON workspaces (chat_id) WHERE status = 'live';

-- `list_workspaces`, oldest first.
CREATE INDEX workspaces_created_at ON workspaces (created_at);

-- `count_hibernated` and the retention scan.
CREATE INDEX workspaces_hibernated
    ON workspaces (retained_until) WHERE status = 'live' AND retained_until IS NOT NULL;

-- The release before named each session's volume after the session: an
-- active session's workspace has the session's id, and is live.
INSERT INTO workspaces (id, chat_id, created_at, created_by, status)
    SELECT id, chat_id, created_at, id, 'live'
    FROM sessions WHERE status IN ('creating', 'running');

-- SQLite cannot change a CHECK: the sessions table is rebuilt with
-- `workspace_id` and the new end reasons, and its indexes made again.
CREATE TABLE sessions_new (
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
    end_reason   TEXT    CHECK (end_reason IN ('expired', 'hibernated', 'max_lifetime',
                                               'container_gone', 'spec_changed', 'stopped',
                                               'create_failed', 'create_interrupted')),
    ended_at     INTEGER,
    -- No foreign key: ended sessions outlive their workspace's row.
    workspace_id TEXT    NOT NULL,
    -- An ended row says why and when; an active one says neither.
    CHECK ((status = 'ended') = (end_reason IS NOT NULL)),
    CHECK ((status = 'ended') = (ended_at IS NOT NULL)),
    -- A running session has its container.
    CHECK (status <> 'running' OR container_id IS NOT NULL)
) STRICT;

INSERT INTO sessions_new (id, chat_id, container_id, image, spec_hash, image_override, env_json,
                          generation, idle_ttl_ms, created_at, last_used_at, expires_at, status,
                          end_reason, ended_at, workspace_id)
    SELECT id, chat_id, container_id, image, spec_hash, image_override, env_json,
           generation, idle_ttl_ms, created_at, last_used_at, expires_at, status,
           end_reason, ended_at, id
    FROM sessions;

DROP TABLE sessions;
ALTER TABLE sessions_new RENAME TO sessions;

-- The indexes of 0001, as they were.
CREATE UNIQUE INDEX sessions_one_active_per_chat
    ON sessions (chat_id) WHERE status IN ('creating', 'running');

CREATE UNIQUE INDEX sessions_chat_generation ON sessions (chat_id, generation);

CREATE INDEX sessions_active_expires_at
    ON sessions (expires_at) WHERE status IN ('creating', 'running');

CREATE INDEX sessions_active_created_at
    ON sessions (created_at) WHERE status IN ('creating', 'running');

CREATE INDEX sessions_ended_at ON sessions (ended_at) WHERE status = 'ended';

-- `retire_workspace`: is a session running on it?
CREATE INDEX sessions_active_workspace
    ON sessions (workspace_id) WHERE status IN ('creating', 'running');
