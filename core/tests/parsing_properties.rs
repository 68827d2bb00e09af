//! Property tests of the newtypes callers' strings become at the edge
//! (`ChatId`, `WorkspacePath`): any input is an answer, never a panic; what
//! is valid comes back unchanged; every class the types refuse is refused.

use proptest::prelude::*;

use sandboxer_core::domain::{ChatId, InvalidChatId, InvalidWorkspacePath, WorkspacePath};

const CHAT_ID_CHARS: &str = "[A-Za-z0-9_.:@-]";
const MAX_PATH_LEN: usize = 1024;

fn is_chat_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '@' | '-')
}

/// Any string, also from arbitrary bytes (lossily, as an edge decoding a
/// request would).
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(any::<u8>(), 0..1200)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        "[a-z./\\\\\0 ]{0,40}",
    ]
}

fn valid_chat_id() -> impl Strategy<Value = String> {
    prop::string::string_regex(&format!("{CHAT_ID_CHARS}{{1,128}}")).unwrap()
}

/// One character of each class a chat id refuses: NUL, other controls,
/// whitespace, path and shell punctuation, non-ASCII.
fn forbidden_chat_char() -> impl Strategy<Value = char> {
    prop_oneof![
        Just('\0'),
        "[\\x01-\\x1f\\x7f]".prop_map(first),
        prop::sample::select(vec![' ', '\t', '\n', '\r']),
        prop::sample::select("/\\!\"#$%&'()*+,;<=>?[]^`{|}~".chars().collect::<Vec<_>>()),
        any::<char>().prop_filter("non-ASCII", |c| !c.is_ascii()),
    ]
}

fn first(s: String) -> char {
    s.chars().next().unwrap()
}

/// A path segment the workspace accepts: no `/`, `\` or NUL, not `.`/`..`.
fn segment() -> impl Strategy<Value = String> {
    "[^/\\\\\0]{1,16}".prop_filter("not a dot segment", |s| s != "." && s != "..")
}

fn valid_path() -> impl Strategy<Value = String> {
    prop::collection::vec(segment(), 1..8).prop_map(|segs| segs.join("/"))
}

proptest! {
    #[test]
    fn chat_id_answers_any_input_by_its_rule(raw in any_text()) {
        let parsed = ChatId::parse(&raw);
        let allowed = !raw.is_empty() && raw.len() <= 128 && raw.chars().all(is_chat_id_char);
        prop_assert_eq!(parsed.is_ok(), allowed, "{:?} -> {:?}", raw, parsed);
    }

    #[test]
    fn valid_chat_ids_round_trip(raw in valid_chat_id()) {
        let id = ChatId::parse(&raw).unwrap();
        prop_assert_eq!(id.as_str(), raw.as_str());
        prop_assert_eq!(id.to_string(), raw);
    }

    #[test]
    fn too_long_chat_ids_are_refused(raw in prop::string::string_regex(&format!("{CHAT_ID_CHARS}{{129,400}}")).unwrap()) {
        prop_assert_eq!(ChatId::parse(&raw), Err(InvalidChatId::TooLong(raw.len())));
    }

    #[test]
    fn any_forbidden_character_is_named(
        head in prop::string::string_regex(&format!("{CHAT_ID_CHARS}{{0,60}}")).unwrap(),
        bad in forbidden_chat_char(),
        tail in prop::string::string_regex(&format!("{CHAT_ID_CHARS}{{0,60}}")).unwrap(),
    ) {
        let raw = format!("{head}{bad}{tail}");
        prop_assert_eq!(ChatId::parse(&raw), Err(InvalidChatId::ForbiddenCharacter(bad)));
    }

    #[test]
    fn workspace_path_answers_any_input_and_never_lets_a_path_out(raw in any_text()) {
        if let Ok(path) = WorkspacePath::parse(&raw) {
            prop_assert_eq!(path.as_str(), raw.as_str());
            prop_assert!(!raw.is_empty() && raw.len() <= MAX_PATH_LEN);
            prop_assert!(!raw.starts_with('/') && !raw.contains('\0') && !raw.contains('\\'));
            prop_assert!(raw.split('/').all(|s| !s.is_empty() && s != "." && s != ".."));
            prop_assert!(path.absolute().starts_with("/workspace/"));
        }
    }

    #[test]
    fn valid_paths_round_trip(raw in valid_path()) {
        prop_assume!(raw.len() <= MAX_PATH_LEN);
        let path = WorkspacePath::parse(&raw).unwrap();
        prop_assert_eq!(path.as_str(), raw.as_str());
        prop_assert_eq!(path.to_string(), raw.clone());
        prop_assert_eq!(path.absolute(), format!("/workspace/{raw}"));
        prop_assert_eq!(path.parent(), raw.rsplit_once('/').map(|(dir, _)| dir));
    }

    #[test]
    fn too_long_paths_are_refused(segs in prop::collection::vec("[a-z]{1,64}", 20..80)) {
        let raw = segs.join("/");
        prop_assume!(raw.len() > MAX_PATH_LEN);
        prop_assert_eq!(WorkspacePath::parse(&raw), Err(InvalidWorkspacePath::TooLong(raw.len())));
    }

    #[test]
    fn nul_and_backslash_are_refused_anywhere(
        head in "[a-z/.]{0,30}",
        bad in prop::sample::select(vec!['\0', '\\']),
        tail in "[a-z/.]{0,30}",
    ) {
        let raw = format!("{head}{bad}{tail}");
        prop_assert_eq!(WorkspacePath::parse(&raw), Err(InvalidWorkspacePath::ForbiddenCharacter));
    }

    #[test]
    fn absolute_paths_are_refused(raw in valid_path()) {
        let raw = format!("/{raw}");
        prop_assume!(raw.len() <= MAX_PATH_LEN);
        prop_assert_eq!(WorkspacePath::parse(&raw), Err(InvalidWorkspacePath::Absolute(raw.clone())));
    }

    #[test]
    fn dot_dot_dot_and_empty_segments_are_refused_wherever_they_are(
        mut segs in prop::collection::vec(segment(), 1..6),
        at in any::<prop::sample::Index>(),
        bad in prop::sample::select(vec!["..", ".", ""]),
    ) {
        let at = at.index(segs.len() + 1);
        // An empty first segment would make the path absolute, another class.
        prop_assume!(!(bad.is_empty() && at == 0));
        segs.insert(at, bad.to_owned());
        let raw = segs.join("/");
        prop_assume!(raw.len() <= MAX_PATH_LEN);
        prop_assert_eq!(WorkspacePath::parse(&raw), Err(InvalidWorkspacePath::Traversal(raw.clone())));
    }
}

#[test]
fn the_empty_string_is_empty_for_both() {
    assert_eq!(ChatId::parse(""), Err(InvalidChatId::Empty));
    assert_eq!(WorkspacePath::parse(""), Err(InvalidWorkspacePath::Empty));
}
