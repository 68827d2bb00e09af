//! Two runtime instances creating the same session at once end up with one
//! container, and both get its id (the 409 adopt path).

use std::collections::HashMap;

use bollard::query_parameters::ListContainersOptionsBuilder;
use sandboxer_core::port::SandboxRuntime;
use sandboxer_core::testing::RecordingTracer;
use sandboxer_core::testing::runtime_contract::cmd;
use sandboxer_docker::testing::{
    Cleanup, create_request, ensure_test_image, raw_docker, test_runtime, test_spec,
};

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_creates_of_one_session_adopt_one_container() {
    let cleanup = Cleanup::new();
    let image = ensure_test_image();
    for round in 0..3 {
        let request = create_request(test_spec(&image, "runc"));
        cleanup.request(&request);
        let (a_tracer, b_tracer) = (RecordingTracer::new(), RecordingTracer::new());
        let a = test_runtime(&a_tracer).await;
        let b = test_runtime(&b_tracer).await;
        let (made_a, made_b) = tokio::join!(a.create(&request), b.create(&request));
        let (id_a, id_b) = (made_a.unwrap(), made_b.unwrap());
        assert_eq!(id_a, id_b, "round {round}");

        let docker = raw_docker().await;
        let filters = HashMap::from([(
            "label",
            vec![format!("sandboxer.session-id={}", request.session_id)],
        )]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let containers = docker.list_containers(Some(options)).await.unwrap();
        assert_eq!(containers.len(), 1, "round {round}: {containers:?}");
        assert_eq!(
            containers[0].state,
            Some(bollard::models::ContainerSummaryStateEnum::RUNNING)
        );
        let results: Vec<String> = [a_tracer, b_tracer]
            .iter()
            .map(|t| {
                t.one("DockerSandboxRuntime.create")
                    .str("sandbox.result")
                    .unwrap()
                    .to_owned()
            })
            .collect();
        println!("round {round}: results {results:?}");
        assert!(results.contains(&"created".to_owned()), "{results:?}");
        assert!(results.contains(&"adopted".to_owned()), "{results:?}");
        // The adopted sandbox works.
        let sandbox = sandboxer_core::port::SandboxRef {
            session_id: request.session_id,
            chat_id: request.chat_id.clone(),
            container_id: Some(id_a),
        };
        let out = b
            .exec(&sandbox, &cmd(&["touch", "/workspace/ok"]))
            .await
            .unwrap();
        assert_eq!(out.exit_code, 0, "{out:?}");
        a.stop(&sandbox).await.unwrap();
    }
}
