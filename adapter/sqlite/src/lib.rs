//! The SessionStore port on SQLite (sqlx).
