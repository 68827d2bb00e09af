//! Identifiers: the chat platform's `ChatId` (validated at the edge), our
//! `SessionId` and `WorkspaceId` (UUIDv7, so ids sort by creation time)
//! and the runtime's `ContainerId`.

use std::fmt;

use thiserror::Error;
use uuid::Uuid;

/// Longest chat id accepted, in bytes (DESIGN section 1).
pub const CHAT_ID_MAX_LEN: usize = 128;

/// Opaque id of a conversation on the chat platform: 1 to 128 bytes of
/// `[A-Za-z0-9_.:@-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChatId(String);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidChatId {
    #[error("chat id is empty")]
    Empty,
    #[error("chat id is {0} bytes long; at most 128 are allowed")]
    TooLong(usize),
    #[error("chat id contains {0:?}; only A-Z, a-z, 0-9 and _ . : @ - are allowed")]
    ForbiddenCharacter(char),
}

impl ChatId {
    /// # Errors
    /// `InvalidChatId` when `raw` is empty, longer than 128 bytes or holds a
    /// character outside `[A-Za-z0-9_.:@-]`.
    pub fn parse(raw: &str) -> Result<Self, InvalidChatId> {
        if raw.is_empty() {
            return Err(InvalidChatId::Empty);
        }
        if raw.len() > CHAT_ID_MAX_LEN {
            return Err(InvalidChatId::TooLong(raw.len()));
        }
        if let Some(bad) = raw.chars().find(|c| !is_chat_id_char(*c)) {
            return Err(InvalidChatId::ForbiddenCharacter(bad));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What a warm pool member's sandbox stands for until a chat claims
    /// it. Never a valid chat id (`parse` refuses parentheses), so it
    /// cannot meet a real chat.
    pub fn warm_pool() -> Self {
        Self(WARM_POOL.to_owned())
    }

    pub fn is_warm_pool(&self) -> bool {
        self.0 == WARM_POOL
    }
}

const WARM_POOL: &str = "(warm-pool)";

fn is_chat_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '@' | '-')
}

impl fmt::Display for ChatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A UUIDv7 id type: fresh ids sort by creation time; parsing accepts any UUID.
macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $invalid:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        #[derive(Debug, Clone, PartialEq, Eq, Error)]
        #[error("{what} id {0:?} is not a UUID", what = $what)]
        pub struct $invalid(pub String);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// # Errors
            #[doc = concat!("`", stringify!($invalid), "` when `raw` is not a UUID.")]
            pub fn parse(raw: &str) -> Result<Self, $invalid> {
                Uuid::parse_str(raw)
                    .map(Self)
                    .map_err(|_| $invalid(raw.to_owned()))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}

uuid_id!(
    /// One sandbox incarnation of one chat.
    SessionId,
    InvalidSessionId,
    "session"
);

uuid_id!(
    /// A chat's files (its volume), kept across the chat's sessions.
    WorkspaceId,
    InvalidWorkspaceId,
    "workspace"
);

impl WorkspaceId {
    /// The workspace a session of the release before workspaces ran on:
    /// its volume was named after the session, so the id is the session's.
    pub fn of_legacy_session(session: SessionId) -> Self {
        Self(session.0)
    }
}

/// The runtime's id of a container (opaque to the core).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerId(String);

impl ContainerId {
    pub fn new(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_platform_ids_of_the_design() {
        for raw in [
            "-1001234567",
            "C024BE91L",
            "web:42",
            "a",
            "user@host.example",
            "x_y-z.w",
        ] {
            assert_eq!(ChatId::parse(raw).unwrap().as_str(), raw);
        }
        assert!(ChatId::parse(&"a".repeat(128)).is_ok());
    }

    #[test]
    fn refuses_bad_ids_with_an_error_value() {
        assert_eq!(ChatId::parse(""), Err(InvalidChatId::Empty));
        assert_eq!(
            ChatId::parse(&"a".repeat(129)),
            Err(InvalidChatId::TooLong(129))
        );
        for (raw, bad) in [
            ("a/b", '/'),
            ("..", '.'),
            ("a b", ' '),
            ("é", 'é'),
            ("a\0", '\0'),
        ] {
            if raw == ".." {
                // Dots are allowed: ".." is a valid chat id, never a path here.
                assert!(ChatId::parse(raw).is_ok());
                continue;
            }
            assert_eq!(
                ChatId::parse(raw),
                Err(InvalidChatId::ForbiddenCharacter(bad))
            );
        }
    }

    #[test]
    fn the_warm_pool_is_no_chat_a_caller_can_name() {
        assert!(ChatId::parse(ChatId::warm_pool().as_str()).is_err());
        assert!(ChatId::warm_pool().is_warm_pool());
        assert!(!ChatId::parse("warm-pool").unwrap().is_warm_pool());
    }

    #[test]
    fn session_ids_are_v7_and_round_trip() {
        let id = SessionId::new();
        assert_eq!(id.0.get_version_num(), 7);
        assert_eq!(SessionId::parse(&id.to_string()).unwrap(), id);
        assert!(SessionId::parse("nope").is_err());
    }
}
