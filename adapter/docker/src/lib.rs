//! The SandboxRuntime port on the Docker Engine (bollard).
