//! The sandbox spec: everything that shapes a container. Its hash tells
//! whether a running sandbox still matches what is asked for.

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};
use thiserror::Error;

use super::env::{InvalidEnv, check_env};

/// Runtime when the operator names none: runc (gVisor's `runsc` on request).
pub const DEFAULT_RUNTIME: &str = "runc";
/// The non-root `uid:gid` a sandbox runs as unless configured otherwise.
pub const DEFAULT_USER: &str = "1000:1000";
/// Sandboxes get no network unless an operator opens one (DESIGN section 7).
pub const DEFAULT_NETWORK: &str = "none";

/// Resource limits of one sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceLimits {
    pub memory_bytes: u64,
    /// CPU quota in billionths of a CPU (1 CPU = 1_000_000_000).
    pub nano_cpus: u64,
    pub pids: u64,
    /// Size of the `/tmp` tmpfs.
    pub tmp_bytes: u64,
}

impl ResourceLimits {
    /// 512 MiB, 1 CPU, 256 pids, 64 MiB of `/tmp` (DESIGN section 7). A
    /// constant, so the binary's configuration defaults can be built from it.
    pub const DEFAULT: Self = Self {
        memory_bytes: 512 * 1024 * 1024,
        nano_cpus: 1_000_000_000,
        pids: 256,
        tmp_bytes: 64 * 1024 * 1024,
    };
}

impl Default for ResourceLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Everything that shapes a sandbox container. Runtimes turn it into their
/// own configuration; two sandboxes with equal specs are interchangeable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSpec {
    pub image: String,
    /// Container runtime (`runc`, `runsc`, ...).
    pub runtime: String,
    /// The non-root `uid:gid` the sandbox runs as.
    pub user: String,
    pub env: BTreeMap<String, String>,
    pub limits: ResourceLimits,
    /// `none` unless an operator opens the network on purpose.
    pub network: String,
    /// The long-running process that keeps the sandbox alive.
    pub keepalive: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidSpec {
    #[error("image name is empty or contains whitespace: {0:?}")]
    Image(String),
    #[error(transparent)]
    Env(#[from] InvalidEnv),
    #[error("the sandbox user must not be root, got {0:?}")]
    RootUser(String),
    #[error("{0}")]
    Other(String),
}

impl SandboxSpec {
    /// The defaults of DESIGN section 7 on `image`: `runc`, user
    /// `1000:1000`, no environment, default limits, network `none`, kept
    /// alive by `sleep infinity`.
    pub fn with_defaults(image: impl Into<String>) -> Self {
        Self {
            image: image.into(),
            runtime: DEFAULT_RUNTIME.into(),
            user: DEFAULT_USER.into(),
            env: BTreeMap::new(),
            limits: ResourceLimits::DEFAULT,
            network: DEFAULT_NETWORK.into(),
            keepalive: vec!["sleep".into(), "infinity".into()],
        }
    }

    /// # Errors
    /// `InvalidSpec` when the image name, an env entry or the user is unusable.
    pub fn validate(&self) -> Result<(), InvalidSpec> {
        check_image(&self.image)?;
        check_env(&self.env)?;
        let uid = self.user.split(':').next().unwrap_or_default();
        if uid.is_empty() || uid == "0" || uid == "root" {
            return Err(InvalidSpec::RootUser(self.user.clone()));
        }
        if self.keepalive.is_empty() {
            return Err(InvalidSpec::Other("keepalive command is empty".into()));
        }
        Ok(())
    }

    /// A stable digest of every field: equal specs, equal hashes, across
    /// processes and releases (the encoding is length-prefixed and ordered).
    pub fn hash(&self) -> SpecHash {
        let mut h = Sha256::new();
        let mut field = |name: &str, value: &str| {
            for part in [name, value] {
                h.update((part.len() as u64).to_le_bytes());
                h.update(part.as_bytes());
            }
        };
        field("image", &self.image);
        field("runtime", &self.runtime);
        field("user", &self.user);
        field("network", &self.network);
        for (k, v) in &self.env {
            field(&format!("env.{k}"), v);
        }
        let l = &self.limits;
        field("memory", &l.memory_bytes.to_string());
        field("cpus", &l.nano_cpus.to_string());
        field("pids", &l.pids.to_string());
        field("tmp", &l.tmp_bytes.to_string());
        for arg in &self.keepalive {
            field("keepalive", arg);
        }
        let digest = h.finalize();
        let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        SpecHash(hex)
    }

    /// This spec with a caller's choices laid over it.
    ///
    /// # Errors
    /// `InvalidSpec` when the overrides name a bad image or env entry.
    pub fn with(&self, overrides: &SpecOverrides) -> Result<Self, InvalidSpec> {
        let mut spec = self.clone();
        if let Some(image) = &overrides.image {
            check_image(image)?;
            spec.image.clone_from(image);
        }
        check_env(&overrides.env)?;
        spec.env
            .extend(overrides.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(spec)
    }
}

fn check_image(image: &str) -> Result<(), InvalidSpec> {
    if image.is_empty() || image.len() > 512 || image.chars().any(char::is_whitespace) {
        return Err(InvalidSpec::Image(image.to_owned()));
    }
    Ok(())
}

/// What a caller may choose per chat; the rest comes from the configured defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecOverrides {
    pub image: Option<String>,
    pub env: BTreeMap<String, String>,
}

/// Short hex digest of a `SandboxSpec`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpecHash(String);

impl SpecHash {
    /// Wraps a hash read back from storage.
    pub fn from_stored(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SpecHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn spec() -> SandboxSpec {
        SandboxSpec::with_defaults("sandboxer-base:latest")
    }

    #[test]
    fn hash_is_stable_and_sees_every_field() {
        let base = spec();
        assert_eq!(base.hash(), spec().hash());
        // Naming every field makes a new one a compile error here until it
        // has its mutation below.
        let SandboxSpec {
            image: _,
            runtime: _,
            user: _,
            env: _,
            limits:
                ResourceLimits {
                    memory_bytes: _,
                    nano_cpus: _,
                    pids: _,
                    tmp_bytes: _,
                },
            network: _,
            keepalive: _,
        } = &base;
        let with_a = |s: &mut SandboxSpec| {
            s.env.insert("A".into(), "1".into());
        };
        // (field, base spec to start from, one change of that field)
        type Edit = fn(&mut SandboxSpec);
        let mutations: [(&str, Edit, Edit); 13] = [
            ("image", |_| {}, |s| s.image = "other:1".into()),
            ("runtime", |_| {}, |s| s.runtime = "runsc".into()),
            ("user", |_| {}, |s| s.user = "1001:1001".into()),
            ("env entry added", |_| {}, with_a),
            ("env value", with_a, |s| {
                s.env.insert("A".into(), "2".into());
            }),
            ("env name", with_a, |s| {
                s.env.clear();
                s.env.insert("B".into(), "1".into());
            }),
            ("memory", |_| {}, |s| s.limits.memory_bytes += 1),
            ("cpus", |_| {}, |s| s.limits.nano_cpus += 1),
            ("pids", |_| {}, |s| s.limits.pids = 128),
            ("tmp", |_| {}, |s| s.limits.tmp_bytes += 1),
            ("network", |_| {}, |s| s.network = "bridge".into()),
            ("keepalive arg", |_| {}, |s| s.keepalive[1] = "3600".into()),
            ("keepalive length", |_| {}, |s| s.keepalive.push("x".into())),
        ];
        for (field, prepare, mutate) in mutations {
            let mut before = spec();
            prepare(&mut before);
            let mut after = before.clone();
            mutate(&mut after);
            assert_ne!(after, before, "{field}: the mutation changed nothing");
            assert_ne!(after.hash(), before.hash(), "{field}: {after:?}");
        }

        // What a caller's overrides choose goes into the hash too.
        let overrides: [(&str, SpecOverrides); 2] = [
            (
                "override image",
                SpecOverrides {
                    image: Some("python:3".into()),
                    ..Default::default()
                },
            ),
            (
                "override env",
                SpecOverrides {
                    env: [("LANG".to_string(), "C.UTF-8".to_string())].into(),
                    ..Default::default()
                },
            ),
        ];
        let SpecOverrides { image: _, env: _ } = &overrides[0].1;
        for (field, o) in overrides {
            assert_ne!(base.with(&o).unwrap().hash(), base.hash(), "{field}");
        }
        assert_eq!(
            base.with(&SpecOverrides::default()).unwrap().hash(),
            base.hash()
        );
    }

    #[test]
    fn overrides_are_checked() {
        let base = spec();
        let bad_env = SpecOverrides {
            env: [("1X".to_string(), "v".to_string())].into(),
            ..Default::default()
        };
        assert_eq!(
            base.with(&bad_env),
            Err(InvalidSpec::Env(InvalidEnv::Name("1X".into())))
        );
        let bad_image = SpecOverrides {
            image: Some("a b".into()),
            ..Default::default()
        };
        assert!(matches!(base.with(&bad_image), Err(InvalidSpec::Image(_))));
        let good = SpecOverrides {
            image: Some("python:3".into()),
            env: [("LANG".to_string(), "C.UTF-8".to_string())].into(),
        };
        let s = base.with(&good).unwrap();
        assert_eq!(s.image, "python:3");
        assert_eq!(s.env["LANG"], "C.UTF-8");
    }

    #[test]
    fn root_user_is_refused() {
        let mut s = spec();
        s.user = "0:0".into();
        assert!(matches!(s.validate(), Err(InvalidSpec::RootUser(_))));
        assert!(spec().validate().is_ok());
    }
}
