//! The domain's input rules (`sandboxer_core::domain`) as JSON Schema, so the
//! OpenAPI document refuses what the server refuses and allows what it
//! accepts. Each type here only names a schema; the domain types stay the
//! one place that validates.
//!
//! Patterns keep to the part of regex syntax that ECMA-262 (what JSON Schema
//! names), Python and Rust read alike: classes, `\uXXXX` escapes, `(?:)`,
//! no lookaround.

use std::borrow::Cow;

use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{KnownFormat, RefOr, SchemaFormat};
use utoipa::{PartialSchema, ToSchema};

use sandboxer_core::domain::FileKind;
use sandboxer_core::domain::ids::CHAT_ID_MAX_LEN;

/// Any text without a NUL byte: the rule of argv entries, env values and
/// paths, which become C strings in the sandbox.
const NO_NUL: &str = r"^[^\u0000]*$";

/// Longest workspace path, in bytes (`WorkspacePath::parse`).
pub const WORKSPACE_PATH_MAX_LEN: usize = 1024;
/// Longest image name, in bytes (`SandboxSpec::with`).
pub const IMAGE_MAX_LEN: usize = 512;

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn no_nul() -> Schema {
    string().pattern(Some(NO_NUL)).into()
}

/// Declares `$name` as a named schema built by `$schema`.
macro_rules! named_schema {
    ($(#[$doc:meta])* $name:ident, $schema:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                RefOr::T($schema)
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

named_schema!(
    /// `ChatId::parse`: 1 to 128 bytes of `[A-Za-z0-9_.:@-]` (ASCII, so
    /// characters and bytes agree).
    ChatId,
    string()
        .description(Some("1 to 128 bytes of [A-Za-z0-9_.:@-]"))
        .pattern(Some(r"^[A-Za-z0-9_.:@-]+$"))
        .min_length(Some(1))
        .max_length(Some(CHAT_ID_MAX_LEN))
        .into()
);

/// One segment of a workspace path: not empty, not `.` nor `..`, no `/`,
/// backslash or NUL. Spelled without lookahead: starts with a non-dot, or is
/// a dot and a non-dot, or two dots and at least one more character.
const PATH_SEGMENT: &str =
    r"(?:[^/\\\u0000.][^/\\\u0000]*|\.[^/\\\u0000.][^/\\\u0000]*|\.\.[^/\\\u0000]+)";

named_schema!(
    /// `WorkspacePath::parse`: relative, `/`-separated plain segments.
    WorkspacePath,
    string()
        .description(Some(
            "relative to /workspace: segments separated by `/`, none empty, `.` or `..`; \
             no backslash or NUL; at most 1024 bytes of UTF-8 (JSON Schema counts \
             characters, so a path of many non-ASCII characters can be refused below \
             1024 of them)",
        ))
        .pattern(Some(format!("^{PATH_SEGMENT}(?:/{PATH_SEGMENT})*$")))
        .min_length(Some(1))
        .max_length(Some(WORKSPACE_PATH_MAX_LEN))
        .into()
);

/// A workdir segment may also be empty (`//`) or `.`; only `..` is refused.
const WORKDIR_SEGMENT: &str = r"(?:\.?|\.?[^/\u0000.][^/\u0000]*|\.\.[^/\u0000]+)";

named_schema!(
    /// `ExecRequest::with_workdir`: absolute, no `..` segment, no NUL.
    Workdir,
    string()
        .description(Some(
            "absolute, without a `..` segment or NUL; defaults to /workspace"
        ))
        .pattern(Some(format!("^(?:/{WORKDIR_SEGMENT})+$")))
        .into()
);

named_schema!(
    /// `ExecRequest::new`: a program (non-empty) and its arguments, no NUL.
    Argv,
    ArrayBuilder::new()
        .description(Some(
            "the program and its arguments; no shell unless you run one"
        ))
        .prefix_items([string().pattern(Some(NO_NUL)).min_length(Some(1))])
        .items(RefOr::T(no_nul()))
        .min_items(Some(1))
        .into()
);

named_schema!(
    /// `check_env` and `ExecRequest::with_env`: POSIX-style names, values
    /// without NUL.
    EnvVars,
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some("names of [A-Za-z_][A-Za-z0-9_]*, values without NUL"))
        .property_names(Some(string().pattern(Some(r"^[A-Za-z_][A-Za-z0-9_]*$"))))
        .additional_properties(Some(string().pattern(Some(NO_NUL))))
        .into()
);

/// What Rust's `char::is_whitespace` calls whitespace (Unicode `White_Space`),
/// spelled out because `\s` means other sets in ECMA-262 and Python.
const WHITESPACE: &str =
    r"\t\n\u000B\u000C\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

named_schema!(
    /// `check_image`: not empty, no whitespace, at most 512 bytes.
    Image,
    string()
        .description(Some(
            "image to run instead of the configured default: no whitespace, at most \
             512 bytes of UTF-8 (characters here; see WorkspacePath)",
        ))
        .pattern(Some(format!("^[^{WHITESPACE}]+$")))
        .min_length(Some(1))
        .max_length(Some(IMAGE_MAX_LEN))
        .into()
);

named_schema!(
    /// A file's bytes, as uploaded and downloaded.
    FileBytes,
    string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
        .into()
);

named_schema!(
    /// `FileKind::as_str`: what a listed entry is.
    FileType,
    string()
        .description(Some("file, dir, symlink (not followed) or other (socket, FIFO, device)"))
        .enum_values(Some(FileKind::ALL.map(FileKind::as_str)))
        .into()
);

named_schema!(
    /// The `list` query parameter where only a listing is served.
    ListTrue,
    ObjectBuilder::new()
        .schema_type(Type::Boolean)
        .description(Some("must be true: this route only lists"))
        .enum_values(Some([true]))
        .into()
);

named_schema!(
    /// `ProcessId::parse`: 1 to 64 bytes of `[A-Za-z0-9_.:-]`.
    ProcessId,
    string()
        .description(Some("1 to 64 bytes of [A-Za-z0-9_.:-]"))
        .pattern(Some(r"^[A-Za-z0-9_.:-]+$"))
        .min_length(Some(1))
        .max_length(Some(sandboxer_core::domain::process::PROCESS_ID_MAX_LEN))
        .into()
);

named_schema!(
    /// `Signal::parse`: a name, with or without `SIG`.
    SignalName,
    string()
        .enum_values(Some(
            sandboxer_core::domain::Signal::ALL
                .iter()
                .flat_map(|s| [s.name().to_owned(), format!("SIG{}", s.name())]),
        ))
        .into()
);

named_schema!(
    /// How output bytes are put in JSON (`stream::Encoding`).
    OutputEncoding,
    string().enum_values(Some(["auto", "base64"])).into()
);

named_schema!(
    /// A byte offset in a stream: what `QueryPairs::offset` takes.
    Offset,
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(0))
        .into()
);
