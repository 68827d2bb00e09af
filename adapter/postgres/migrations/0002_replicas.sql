-- Replicas of the deployment say they are alive here every few seconds
-- (the server's clock, so replicas' clocks need not agree). A starting
-- replica that sees another one alive leaves in-flight creates and warming
-- sandboxes to the leader's timeouts instead of taking them for abandoned.
CREATE TABLE replicas (
    id           TEXT        NOT NULL PRIMARY KEY,
    host         TEXT        NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
