//! Environment variables a caller may set in a sandbox (its spec) or for
//! one command (an exec): checked here once, so both refuse the same names.

use std::collections::BTreeMap;

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidEnv {
    #[error("environment variable name {0:?} is not of [A-Za-z_][A-Za-z0-9_]*")]
    Name(String),
    #[error("environment variable {0} holds a NUL byte")]
    Value(String),
}

/// Names of `[A-Za-z_][A-Za-z0-9_]*`: what a POSIX shell can expand, so a
/// variable set here is one a command can read. Values may hold anything
/// but NUL, which would end the `NAME=value` string the kernel sees.
///
/// # Errors
/// `InvalidEnv` for the first (in name order) bad name or value.
pub fn check_env(env: &BTreeMap<String, String>) -> Result<(), InvalidEnv> {
    for (name, value) in env {
        if !is_env_name(name) {
            return Err(InvalidEnv::Name(name.clone()));
        }
        if value.contains('\0') {
            return Err(InvalidEnv::Value(name.clone()));
        }
    }
    Ok(())
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str, value: &str) -> Result<(), InvalidEnv> {
        check_env(&[(name.to_owned(), value.to_owned())].into())
    }

    #[test]
    fn names_are_shell_identifiers_and_values_have_no_nul() {
        for good in ["A", "_", "_x1", "LANG", "a_B_9"] {
            assert_eq!(one(good, "v"), Ok(()), "{good:?}");
        }
        for bad in ["", "9", "1X", "A-B", "A B", "A=B", "É", "A\0"] {
            assert_eq!(one(bad, "v"), Err(InvalidEnv::Name(bad.into())), "{bad:?}");
        }
        assert_eq!(one("A", "x\0y"), Err(InvalidEnv::Value("A".into())));
        assert_eq!(
            InvalidEnv::Name("9".into()).to_string(),
            "environment variable name \"9\" is not of [A-Za-z_][A-Za-z0-9_]*"
        );
    }
}
