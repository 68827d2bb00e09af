//! Removes every container and volume a test made, by the session and
//! workspace ids it registered, when dropped (also on panic). Never touches
//! anything else.

use std::sync::Mutex;

use bollard::query_parameters::{RemoveContainerOptionsBuilder, RemoveVolumeOptions};
use sandboxer_core::domain::{SessionId, WorkspaceId};
use sandboxer_core::port::CreateRequest;

use super::{footprint_names, raw_docker, volume_name};

#[derive(Debug, Default)]
pub struct Cleanup {
    sessions: Mutex<Vec<SessionId>>,
    workspaces: Mutex<Vec<WorkspaceId>>,
    containers: Mutex<Vec<String>>,
}

impl Cleanup {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a session before its sandbox is made: its containers,
    /// and a volume named as the release before workspaces named them.
    pub fn session(&self, session: SessionId) -> SessionId {
        self.sessions.lock().unwrap().push(session);
        session
    }

    /// Registers a workspace before its volume is made.
    pub fn workspace(&self, workspace: WorkspaceId) -> WorkspaceId {
        self.workspaces.lock().unwrap().push(workspace);
        workspace
    }

    /// Registers what a create of `request` makes: its session's
    /// containers and its workspace's volume.
    pub fn request(&self, request: &CreateRequest) {
        self.session(request.session_id);
        self.workspace(request.workspace.id());
    }

    /// Registers a container made outside the adapter, by name.
    pub fn container(&self, name: impl Into<String>) {
        self.containers.lock().unwrap().push(name.into());
    }

    /// Removes everything registered now (the drop does it again, harmlessly).
    pub fn run(&self) {
        let sessions = self.sessions.lock().unwrap().clone();
        let workspaces = self.workspaces.lock().unwrap().clone();
        let containers = self.containers.lock().unwrap().clone();
        // Drop may run inside a test's runtime: work on a thread of our own.
        let worker = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async move {
                let docker = raw_docker().await;
                let force = RemoveContainerOptionsBuilder::new()
                    .force(true)
                    .v(true)
                    .build();
                let mut names = containers;
                let mut volumes: Vec<String> = workspaces.into_iter().map(volume_name).collect();
                for session in sessions {
                    let [container, prep, volume] = footprint_names(session);
                    names.push(container);
                    names.push(prep);
                    volumes.push(volume);
                }
                for name in names {
                    let _ = docker.remove_container(&name, Some(force.clone())).await;
                }
                for volume in volumes {
                    let _ = docker
                        .remove_volume(&volume, None::<RemoveVolumeOptions>)
                        .await;
                }
            });
        });
        let _ = worker.join();
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.run();
    }
}
