-- The deployment this database holds the sessions of (one row): sandboxes
-- are labelled with its id, so services with other databases on the same
-- engine never touch them. Written once, on first use; never changed.
CREATE TABLE deployment (
    singleton   INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
    instance_id TEXT    NOT NULL CHECK (length(instance_id) BETWEEN 1 AND 63)
) STRICT;
