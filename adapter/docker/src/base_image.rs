//! The default sandbox image without a registry: a Debian rootfs made by
//! debootstrap, fitted for the sandbox user, packed and `docker import`ed.
//! Also a bounded pull, for when a registry does answer.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bollard::query_parameters::CreateImageOptionsBuilder;
use futures::StreamExt;
use sandboxer_core::port::RuntimeError;
use thiserror::Error;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::errors::Subject;
use crate::runtime::DockerSandboxRuntime;

/// What a coding or data agent expects to find, on top of debootstrap's
/// `minbase` (comma-separated, as the CLI takes them). The locale is
/// `C.UTF-8`, which glibc carries without the `locales` package.
pub const DEFAULT_PACKAGES: &str = "python3,python3-pip,python3-venv,git,curl,ca-certificates,\
procps,jq,unzip,xz-utils,file,less";

/// Bumped when the build changes what an image holds other than through
/// the recipe's fields (the fitting, the import's settings).
const RECIPE_REVISION: u32 = 2;

/// On a built image: the fingerprint of the recipe it was built from.
pub const LABEL_RECIPE: &str = "sandboxer.base-recipe";

/// What goes into the base image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImageRecipe {
    /// `repo:tag` of the result.
    pub tag: String,
    /// Debian suite.
    pub suite: String,
    pub mirror: String,
    /// Installed on top of debootstrap's `minbase`.
    pub packages: Vec<String>,
    /// The sandbox user (`/workspace` belongs to it).
    pub uid: u32,
    pub gid: u32,
    /// Where the rootfs is built (a temporary directory inside it).
    pub scratch: PathBuf,
}

impl Default for BaseImageRecipe {
    fn default() -> Self {
        Self {
            tag: "sandboxer-base:bookworm".into(),
            suite: "bookworm".into(),
            mirror: "http://deb.debian.org/debian".into(),
            packages: DEFAULT_PACKAGES.split(',').map(str::to_owned).collect(),
            uid: 1000,
            gid: 1000,
            scratch: PathBuf::from("/var/tmp"),
        }
    }
}

impl BaseImageRecipe {
    /// Names what the image holds: suite, packages (in any order), user,
    /// and the build's revision; not the tag, the mirror or the scratch
    /// directory. Stored as the image's `sandboxer.base-recipe` label.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut packages = self.packages.clone();
        packages.sort();
        packages.dedup();
        let described = format!(
            "r{RECIPE_REVISION} {} {} {}:{}",
            self.suite,
            packages.join(","),
            self.uid,
            self.gid
        );
        Sha256::digest(described.as_bytes())[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[derive(Debug, Error)]
pub enum ImageBuildError {
    #[error("debootstrap is not installed (apt-get install debootstrap)")]
    NoDebootstrap,
    #[error("building the base image needs root (debootstrap chroots and sets owners)")]
    NotRoot,
    #[error("debootstrap failed ({0}); its last lines are above")]
    Debootstrap(String),
    #[error("{0}")]
    Io(String),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// Progress lines of a build, for a human watching.
pub type Progress<'a> = &'a (dyn Fn(&str) + Send + Sync);

impl DockerSandboxRuntime {
    /// Builds the base image `recipe` describes and returns its id.
    ///
    /// # Errors
    /// `ImageBuildError`: missing debootstrap or root, a failed debootstrap
    /// (network, mirror), disk errors, or Docker refusing the import.
    pub async fn build_base_image(
        &self,
        recipe: &BaseImageRecipe,
        progress: Progress<'_>,
    ) -> Result<String, ImageBuildError> {
        let started = Instant::now();
        let debootstrap = find_debootstrap().ok_or(ImageBuildError::NoDebootstrap)?;
        if !rustix::process::geteuid().is_root() {
            return Err(ImageBuildError::NotRoot);
        }
        let scratch = tempfile::Builder::new()
            .prefix("sandboxer-base-")
            .tempdir_in(&recipe.scratch)
            .map_err(|e| {
                io(
                    format!("making a work directory in {}", recipe.scratch.display()),
                    e,
                )
            })?;
        let rootfs = scratch.path().join("rootfs");
        progress(&format!(
            "[1/4] debootstrap {} ({}) with {} into {} (a few minutes)",
            recipe.suite,
            recipe.mirror,
            recipe.packages.join(", "),
            rootfs.display()
        ));
        run_debootstrap(&debootstrap, recipe, &rootfs, progress).await?;
        progress("[2/4] fitting the rootfs for the sandbox user");
        let fitted = rootfs.clone();
        let (uid, gid) = (recipe.uid, recipe.gid);
        blocking(move || fit_rootfs(&fitted, uid, gid)).await?;
        let tarball = scratch.path().join("rootfs.tar");
        progress("[3/4] packing the rootfs");
        let (from, to) = (rootfs.clone(), tarball.clone());
        let bytes = blocking(move || pack(&from, &to)).await?;
        progress(&format!(
            "[4/4] importing {} MiB into Docker as {}",
            bytes / (1024 * 1024),
            recipe.tag
        ));
        let id = self.import(&tarball, recipe).await?;
        progress(&format!(
            "done: {} is {id} (built in {:.0} s)",
            recipe.tag,
            started.elapsed().as_secs_f64()
        ));
        Ok(id)
    }

    /// The recipe fingerprint `image` was built from (its
    /// `sandboxer.base-recipe` label); `None` for a missing image or one
    /// built otherwise.
    ///
    /// # Errors
    /// `Unavailable`, `Timeout`, `Other`.
    pub async fn image_recipe(&self, image: &str) -> Result<Option<String>, RuntimeError> {
        match self
            .engine
            .call("inspect image", self.engine.docker.inspect_image(image))
            .await
        {
            Ok(info) => Ok(info
                .config
                .and_then(|c| c.labels)
                .and_then(|mut l| l.remove(LABEL_RECIPE))),
            Err(fault) if fault.is_not_found() => Ok(None),
            Err(fault) => Err(fault.on(Subject::Image(image))),
        }
    }

    /// Pulls `image` when a registry answers within `limit`.
    ///
    /// # Errors
    /// `RuntimeError` naming why not (no registry, unknown image, timeout).
    pub async fn pull_image(&self, image: &str, limit: Duration) -> Result<(), RuntimeError> {
        let options = CreateImageOptionsBuilder::new().from_image(image).build();
        let pull = async {
            let mut stream = self.engine.docker.create_image(Some(options), None, None);
            while let Some(step) = stream.next().await {
                step?;
            }
            Ok::<(), bollard::errors::Error>(())
        };
        self.engine
            .call_within("pull image", limit, pull)
            .await
            .map_err(|f| f.on(Subject::Image(image)))
    }

    async fn import(
        &self,
        tarball: &Path,
        recipe: &BaseImageRecipe,
    ) -> Result<String, ImageBuildError> {
        let (repo, tag) = recipe
            .tag
            .rsplit_once(':')
            .filter(|(_, t)| !t.contains('/'))
            .unwrap_or((recipe.tag.as_str(), "latest"));
        let changes = vec![
            r#"CMD ["sleep", "infinity"]"#.to_owned(),
            format!("USER {}:{}", recipe.uid, recipe.gid),
            "WORKDIR /workspace".to_owned(),
            "ENV HOME=/workspace".to_owned(),
            "ENV LANG=C.UTF-8".to_owned(),
            "ENV PATH=/workspace/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
            // The sandbox has no writable system site; `pip install --user`
            // lands in /workspace, which outlives every exec.
            "ENV PIP_BREAK_SYSTEM_PACKAGES=1".to_owned(),
            "LABEL sandboxer.base-image=true".to_owned(),
            format!("LABEL {LABEL_RECIPE}={}", recipe.fingerprint()),
        ];
        let options = CreateImageOptionsBuilder::new()
            .from_src("-")
            .repo(repo)
            .tag(tag)
            .changes(changes)
            .build();
        let file = tokio::fs::File::open(tarball)
            .await
            .map_err(|e| io(format!("opening {}", tarball.display()), e))?;
        let body = bollard::body_try_stream(tokio_util::io::ReaderStream::new(file));
        let import = async {
            let mut stream = self
                .engine
                .docker
                .create_image(Some(options), Some(body), None);
            while let Some(step) = stream.next().await {
                step?;
            }
            Ok::<(), bollard::errors::Error>(())
        };
        // An import of a few hundred MiB takes far longer than one API call.
        self.engine
            .call_within("import image", Duration::from_secs(900), import)
            .await
            .map_err(|f| f.on(Subject::Image(&recipe.tag)))?;
        let inspected = self
            .engine
            .call(
                "inspect image",
                self.engine.docker.inspect_image(&recipe.tag),
            )
            .await
            .map_err(|f| f.on(Subject::Image(&recipe.tag)))?;
        Ok(inspected.id.unwrap_or_default())
    }
}

fn find_debootstrap() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join("debootstrap"))
        .find(|p| p.is_file())
}

async fn run_debootstrap(
    debootstrap: &Path,
    recipe: &BaseImageRecipe,
    rootfs: &Path,
    progress: Progress<'_>,
) -> Result<(), ImageBuildError> {
    let mut child = tokio::process::Command::new(debootstrap)
        .arg("--variant=minbase")
        .arg(format!("--include={}", recipe.packages.join(",")))
        .arg(&recipe.suite)
        .arg(rootfs)
        .arg(&recipe.mirror)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| io("starting debootstrap".into(), e))?;
    let stdout = child.stdout.take().map(|s| BufReader::new(s).lines());
    let stderr = child.stderr.take().map(|s| BufReader::new(s).lines());
    let (status, (), ()) = tokio::join!(
        child.wait(),
        forward(stdout, progress),
        forward(stderr, progress)
    );
    let status = status.map_err(|e| io("waiting for debootstrap".into(), e))?;
    if status.success() {
        Ok(())
    } else {
        Err(ImageBuildError::Debootstrap(status.to_string()))
    }
}

async fn forward<R: tokio::io::AsyncBufRead + Unpin>(
    lines: Option<tokio::io::Lines<R>>,
    progress: Progress<'_>,
) {
    if let Some(mut lines) = lines {
        while let Ok(Some(line)) = lines.next_line().await {
            progress(&format!("  debootstrap: {line}"));
        }
    }
}

/// The sandbox user, its `/workspace`, a sticky `/tmp`, no apt caches and
/// no device nodes (Docker brings its own `/dev`).
fn fit_rootfs(rootfs: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    let passwd = rootfs.join("etc/passwd");
    if !std::fs::read_to_string(&passwd)?.contains(&format!(":{uid}:")) {
        let mut f = std::fs::OpenOptions::new().append(true).open(&passwd)?;
        writeln!(f, "sandbox:x:{uid}:{gid}:sandbox:/workspace:/bin/bash")?;
        let mut g = std::fs::OpenOptions::new()
            .append(true)
            .open(rootfs.join("etc/group"))?;
        writeln!(g, "sandbox:x:{gid}:")?;
    }
    let workspace = rootfs.join("workspace");
    std::fs::create_dir_all(&workspace)?;
    std::os::unix::fs::chown(&workspace, Some(uid), Some(gid))?;
    std::fs::set_permissions(&workspace, std::fs::Permissions::from_mode(0o755))?;
    std::fs::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777))?;
    for dir in ["var/cache/apt/archives", "var/lib/apt/lists", "dev"] {
        let dir = rootfs.join(dir);
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                if entry.file_name() != "partial" {
                    std::fs::remove_dir_all(entry.path())?;
                }
            } else {
                std::fs::remove_file(entry.path())?;
            }
        }
    }
    Ok(())
}

/// Tars `rootfs` (owners, modes and symlinks kept) into `tarball`; returns its size.
fn pack(rootfs: &Path, tarball: &Path) -> std::io::Result<u64> {
    let file = std::fs::File::create(tarball)?;
    let mut builder = tar::Builder::new(std::io::BufWriter::new(file));
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Complete);
    builder.append_dir_all(".", rootfs)?;
    builder
        .into_inner()?
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    Ok(std::fs::metadata(tarball)?.len())
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, ImageBuildError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ImageBuildError::Io(e.to_string()))?
        .map_err(|e| ImageBuildError::Io(e.to_string()))
}

fn io(what: String, err: std::io::Error) -> ImageBuildError {
    ImageBuildError::Io(format!("{what}: {err}"))
}
