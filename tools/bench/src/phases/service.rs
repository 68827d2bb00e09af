//! The service's side: every call through its HTTP API, with its own span
//! histograms read around each phase.

use std::collections::HashMap;

use anyhow::{Context, ensure};
use reqwest::Method;
use serde_json::json;

use super::{Ctx, FILE, each};
use crate::api::{Body, exec_path, file_path, sandbox_path};
use crate::figures::{self as op, Figures, Side};
use crate::metrics;

/// One pass of the service's calls over `chats`: create, reuse, get,
/// exec `true`, exec the program, put and get 1 MiB, stop.
pub async fn service_round(
    ctx: &Ctx<'_>,
    chats: &[String],
    figs: &mut Figures,
) -> anyhow::Result<()> {
    let api = ctx.api;
    let c = ctx.concurrency;
    let mark = metrics::scrape(api).await?;
    let (s, made, wall) = each(chats.to_vec(), c, |chat| async move {
        let a = api
            .send(Method::PUT, &sandbox_path(&chat), Body::None)
            .await?;
        let v = a.expect(201, "create")?;
        ensure!(v["result"] == "created", "create of {chat}: {v}");
        let session = v["session_id"]
            .as_str()
            .context("no session_id")?
            .to_owned();
        Ok((a.took, (chat, session)))
    })
    .await?;
    figs.add(Side::Service, op::CREATE, s, wall);
    figs.add_spans(
        op::CREATE,
        metrics::delta(&mark, &metrics::scrape(api).await?),
    );
    let sessions: HashMap<String, String> = made.into_iter().collect();

    let repeated: Vec<String> = (0..ctx.reuse_rounds)
        .flat_map(|_| chats.iter().cloned())
        .collect();
    let mark = metrics::scrape(api).await?;
    let (s, _, wall) = each(repeated, c, |chat| {
        let want = sessions[&chat].clone();
        async move {
            let a = api
                .send(Method::PUT, &sandbox_path(&chat), Body::None)
                .await?;
            let v = a.expect(200, "reuse")?;
            ensure!(
                v["result"] == "reused" && v["session_id"] == want.as_str(),
                "reuse of {chat}: {v}"
            );
            Ok((a.took, ()))
        }
    })
    .await?;
    figs.add(Side::Service, op::REUSE, s, wall);
    figs.add_spans(
        op::REUSE,
        metrics::delta(&mark, &metrics::scrape(api).await?),
    );

    let mark = metrics::scrape(api).await?;
    let (s, _, wall) = each(chats.to_vec(), c, |chat| async move {
        let a = api
            .send(Method::GET, &sandbox_path(&chat), Body::None)
            .await?;
        a.expect(200, "get sandbox")?;
        Ok((a.took, ()))
    })
    .await?;
    figs.add(Side::Service, op::GET_SANDBOX, s, wall);
    figs.add_spans(
        op::GET_SANDBOX,
        metrics::delta(&mark, &metrics::scrape(api).await?),
    );

    for (name, argv, expected) in [
        (op::EXEC_TRUE, vec!["true"], ""),
        (
            op::EXEC_PROGRAM,
            ctx.program.argv.clone(),
            ctx.program.expected,
        ),
    ] {
        let body = serde_json::to_vec(&json!({ "cmd": argv }))?;
        let mark = metrics::scrape(api).await?;
        let (s, _, wall) = each(chats.to_vec(), c, |chat| {
            let body = body.clone();
            async move {
                let a = api
                    .send(Method::POST, &exec_path(&chat), Body::Json(body))
                    .await?;
                let v = a.expect(200, name)?;
                ensure!(
                    v["exit_code"] == 0 && v["stdout"] == expected,
                    "{name} in {chat}: {v}"
                );
                Ok((a.took, ()))
            }
        })
        .await?;
        figs.add(Side::Service, name, s, wall);
        figs.add_spans(name, metrics::delta(&mark, &metrics::scrape(api).await?));
    }

    let payload = &ctx.payload;
    let mark = metrics::scrape(api).await?;
    let (s, _, wall) = each(chats.to_vec(), c, |chat| async move {
        let a = api
            .send(
                Method::PUT,
                &file_path(&chat, FILE),
                Body::Bytes(payload.clone()),
            )
            .await?;
        let v = a.expect(200, "put file")?;
        ensure!(v["size"] == payload.len(), "put file in {chat}: {v}");
        Ok((a.took, ()))
    })
    .await?;
    figs.add(Side::Service, op::PUT_FILE, s, wall);
    figs.add_spans(
        op::PUT_FILE,
        metrics::delta(&mark, &metrics::scrape(api).await?),
    );

    let mark = metrics::scrape(api).await?;
    let (s, _, wall) = each(chats.to_vec(), c, |chat| async move {
        let a = api
            .send(Method::GET, &file_path(&chat, FILE), Body::None)
            .await?;
        a.expect(200, "get file")?;
        ensure!(a.body == *payload, "get file in {chat}: the bytes changed");
        Ok((a.took, ()))
    })
    .await?;
    figs.add(Side::Service, op::GET_FILE, s, wall);
    figs.add_spans(
        op::GET_FILE,
        metrics::delta(&mark, &metrics::scrape(api).await?),
    );

    let mark = metrics::scrape(api).await?;
    let (s, _, wall) = each(chats.to_vec(), c, |chat| async move {
        let a = api
            .send(Method::DELETE, &sandbox_path(&chat), Body::None)
            .await?;
        a.expect(204, "stop")?;
        Ok((a.took, ()))
    })
    .await?;
    figs.add(Side::Service, op::STOP, s, wall);
    figs.add_spans(
        op::STOP,
        metrics::delta(&mark, &metrics::scrape(api).await?),
    );
    Ok(())
}
