//! `sandboxer image build`, and the first-start check that the default image
//! is there: pulled where a registry answers, else built, else a clear error
//! naming the command that fixes it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

use sandboxer_core::trace::NoopTracer;
use sandboxer_docker::{BaseImageRecipe, DEFAULT_PACKAGES, DockerConfig, DockerSandboxRuntime};

use crate::config::ServeConfig;
use crate::defaults::IMAGE as DEFAULT_IMAGE;

/// How long a first start waits for a registry before building instead.
const PULL_LIMIT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// Name of the image to make.
    #[arg(long, default_value = DEFAULT_IMAGE)]
    pub tag: String,
    /// Debian suite of the rootfs.
    #[arg(long, default_value = "bookworm")]
    pub suite: String,
    /// Debian mirror.
    #[arg(long, default_value = "http://deb.debian.org/debian")]
    pub mirror: String,
    /// Packages on top of debootstrap's minbase (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = DEFAULT_PACKAGES)]
    pub packages: Vec<String>,
    /// Build only when the image is missing or was built from another
    /// recipe (its `sandboxer.base-recipe` label); else say it is current.
    #[arg(long)]
    pub if_outdated: bool,
    /// Directory the rootfs is built in (needs ~500 MiB).
    #[arg(long, default_value = "/var/tmp")]
    pub scratch: PathBuf,
}

fn recipe(args: &BuildArgs) -> BaseImageRecipe {
    BaseImageRecipe {
        tag: args.tag.clone(),
        suite: args.suite.clone(),
        mirror: args.mirror.clone(),
        packages: args.packages.clone(),
        scratch: args.scratch.clone(),
        ..BaseImageRecipe::default()
    }
}

pub async fn build(args: BuildArgs) -> anyhow::Result<()> {
    let runtime = DockerSandboxRuntime::connect(DockerConfig::default(), Arc::new(NoopTracer))
        .await
        .context("connecting to the Docker Engine")?;
    let recipe = recipe(&args);
    if args.if_outdated {
        let built = runtime.image_recipe(&recipe.tag).await?;
        if built.as_deref() == Some(recipe.fingerprint().as_str()) {
            println!(
                "{} is current (recipe {})",
                recipe.tag,
                recipe.fingerprint()
            );
            return Ok(());
        }
        match built {
            Some(other) => println!(
                "{} was built from recipe {other}: building recipe {}",
                recipe.tag,
                recipe.fingerprint()
            ),
            None => println!(
                "{} is missing or was not built here: building it",
                recipe.tag
            ),
        }
    }
    let print = |line: &str| println!("{line}");
    runtime.build_base_image(&recipe, &print).await?;
    Ok(())
}

/// Makes sure the configured image is there before the service starts.
pub async fn ensure(runtime: &DockerSandboxRuntime, config: &ServeConfig) -> anyhow::Result<()> {
    let image = &config.image;
    if runtime.image_exists(image).await? {
        if image == DEFAULT_IMAGE {
            warn_if_outdated(runtime, image).await;
        }
        return Ok(());
    }
    tracing::warn!(%image, "the sandbox image is missing; trying a registry");
    match runtime.pull_image(image, PULL_LIMIT).await {
        Ok(()) => return Ok(()),
        Err(err) => tracing::warn!(%image, error = %err, "no registry gave the image"),
    }
    if image != DEFAULT_IMAGE || !config.prepare_image {
        bail!(
            "the sandbox image {image} is not in Docker and no registry has it: build the default \
             image with `sandboxer image build`, or set SANDBOXER_IMAGE to an image Docker has"
        );
    }
    tracing::info!(%image, "building the default image (sandboxer image build); this takes a few minutes");
    let log = |line: &str| tracing::info!("image build: {line}");
    runtime
        .build_base_image(&BaseImageRecipe::default(), &log)
        .await
        .context("building the default image failed; run `sandboxer image build` to see why")?;
    Ok(())
}

/// The default image of an older recipe still works; the operator is told
/// how to get the current one.
async fn warn_if_outdated(runtime: &DockerSandboxRuntime, image: &str) {
    let current = BaseImageRecipe::default().fingerprint();
    match runtime.image_recipe(image).await {
        Ok(Some(built)) if built == current => {}
        Ok(built) => tracing::warn!(
            %image,
            built = built.as_deref().unwrap_or("unknown"),
            %current,
            "the default image was built from another recipe: `sandboxer image build` makes the current one"
        ),
        Err(err) => {
            tracing::warn!(%image, error = %err, "could not read the default image's recipe")
        }
    }
}
