//! What Docker holds under our labels: containers and volumes labelled
//! `sandboxer.managed=true` and `sandboxer.instance=<id>`. Counted before
//! and after a run; removed at the end whatever happened. Nothing without
//! both labels is ever touched.

use std::collections::HashMap;

use anyhow::Context;
use bollard::Docker;
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveVolumeOptions,
};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Footprint {
    pub containers: usize,
    pub volumes: usize,
}

impl std::fmt::Display for Footprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} containers, {} volumes",
            self.containers, self.volumes
        )
    }
}

fn filters(instance: &str) -> HashMap<&'static str, Vec<String>> {
    HashMap::from([(
        "label",
        vec![
            "sandboxer.managed=true".to_owned(),
            format!("sandboxer.instance={instance}"),
        ],
    )])
}

async fn names(docker: &Docker, instance: &str) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let filters = filters(instance);
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .context("listing our containers")?
        .into_iter()
        .filter_map(|c| c.id)
        .collect();
    let volumes = docker
        .list_volumes(Some(
            ListVolumesOptionsBuilder::new().filters(&filters).build(),
        ))
        .await
        .context("listing our volumes")?
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.name)
        .collect();
    Ok((containers, volumes))
}

pub async fn count(docker: &Docker, instance: &str) -> anyhow::Result<Footprint> {
    let (containers, volumes) = names(docker, instance).await?;
    Ok(Footprint {
        containers: containers.len(),
        volumes: volumes.len(),
    })
}

/// Removes every container and volume of `instance`; says how many there were.
pub async fn remove_all(docker: &Docker, instance: &str) -> anyhow::Result<Footprint> {
    let (containers, volumes) = names(docker, instance).await?;
    let force = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    for id in &containers {
        let _ = docker.remove_container(id, Some(force.clone())).await;
    }
    for name in &volumes {
        let _ = docker
            .remove_volume(name, None::<RemoveVolumeOptions>)
            .await;
    }
    Ok(Footprint {
        containers: containers.len(),
        volumes: volumes.len(),
    })
}
