//! The test images: FROM scratch, Debian's static busybox, a `sandbox` user
//! 1000, `/tmp` 1777. The plain one has no `/workspace` (so tests prove the
//! workspace is made writable whatever the image); the other has
//! `/workspace` owned by 1000 (the copy-up fast path). Built through the
//! engine's build API from a context made here, tagged by a hash of the
//! inputs, once per process and under a file lock across processes.

use std::collections::HashMap;
use std::fs::File;
use std::sync::OnceLock;

use bollard::query_parameters::BuildImageOptionsBuilder;
use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::raw_docker;

const BUSYBOX: &str = "/bin/busybox";
const PASSWD: &str =
    "root:x:0:0:root:/root:/bin/sh\nsandbox:x:1000:1000:sandbox:/workspace:/bin/sh\n";
const GROUP: &str = "root:x:0:\nsandbox:x:1000:\n";
const LOCK: &str = "/tmp/sandboxer-test-image.lock";

/// The image without `/workspace`; its tag. Panics when it cannot be built.
pub fn ensure_test_image() -> String {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| build(false)).clone()
}

/// The image with `/workspace` owned by the sandbox user.
pub fn ensure_test_image_with_workspace() -> String {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| build(true)).clone()
}

fn dockerfile(with_workspace: bool) -> String {
    let workspace = if with_workspace {
        " && mkdir -p /workspace && chown 1000:1000 /workspace"
    } else {
        ""
    };
    format!(
        "FROM scratch\nCOPY rootfs/ /\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \
         \"/bin/busybox --install -s /bin && mkdir -p /tmp && chmod 1777 /tmp{workspace}\"]\n"
    )
}

fn build(with_workspace: bool) -> String {
    let busybox = std::fs::read(BUSYBOX)
        .unwrap_or_else(|e| panic!("{BUSYBOX} is needed (Debian's busybox-static): {e}"));
    let dockerfile = dockerfile(with_workspace);
    let mut hash = Sha256::new();
    for part in [
        &busybox[..],
        dockerfile.as_bytes(),
        PASSWD.as_bytes(),
        GROUP.as_bytes(),
    ] {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    let digest: String = hash.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let tag = format!("sandboxer-test-busybox:{digest}");
    let context = context(&dockerfile, &busybox).expect("a build context");
    let tag_for_thread = tag.clone();
    std::thread::spawn(move || {
        // Several test binaries may race: one builds, the others wait and
        // then find the tag.
        let lock = File::create(LOCK).expect("the image lock file");
        lock.lock().expect("the image lock");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(build_with_engine(&tag_for_thread, context));
        drop(lock);
    })
    .join()
    .expect("the image build");
    tag
}

async fn build_with_engine(tag: &str, context: Vec<u8>) {
    let docker = raw_docker().await;
    if docker.inspect_image(tag).await.is_ok() {
        return;
    }
    let labels = HashMap::from([("sandboxer.test-image", "true")]);
    let options = BuildImageOptionsBuilder::new()
        .t(tag)
        .rm(true)
        .forcerm(true)
        .networkmode("none")
        .labels(&labels)
        .build();
    let mut progress = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    let mut log = String::new();
    while let Some(step) = progress.next().await {
        match step {
            Ok(info) => log.push_str(info.stream.as_deref().unwrap_or_default()),
            Err(err) => panic!("building {tag} failed: {err}\n{log}"),
        }
    }
    docker
        .inspect_image(tag)
        .await
        .unwrap_or_else(|e| panic!("{tag} missing after its build: {e}\n{log}"));
}

fn context(dockerfile: &str, busybox: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |path: &str, mode: u32, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_mtime(0);
        builder.append_data(&mut header, path, data)
    };
    add("Dockerfile", 0o644, dockerfile.as_bytes())?;
    add("rootfs/bin/busybox", 0o755, busybox)?;
    add("rootfs/etc/passwd", 0o644, PASSWD.as_bytes())?;
    add("rootfs/etc/group", 0o644, GROUP.as_bytes())?;
    builder.into_inner()
}
