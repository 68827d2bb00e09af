//! The same work without the service: through `DockerSandboxRuntime` alone,
//! and with raw bollard calls.

use anyhow::ensure;

use super::{Ctx, FILE, each};
use crate::figures::{self as op, Figures, Side};
use crate::raw::RawBox;

/// The same work with raw bollard calls on `count` containers.
pub async fn raw_round(ctx: &Ctx<'_>, count: usize, figs: &mut Figures) -> anyhow::Result<()> {
    let raw = ctx.raw;
    let c = ctx.concurrency;
    let (s, boxes, wall) = each((0..count).collect(), c, |_| raw.create_start()).await?;
    figs.add(Side::Raw, op::RAW_CREATE, s, wall);

    let repeated: Vec<RawBox> = (0..ctx.reuse_rounds)
        .flat_map(|_| boxes.iter().cloned())
        .collect();
    let (s, _, wall) = each(
        repeated,
        c,
        |b| async move { Ok((raw.inspect(&b).await?, ())) },
    )
    .await?;
    figs.add(Side::Raw, op::RAW_INSPECT, s, wall);

    for (name, argv, expected) in [
        (op::EXEC_TRUE, vec!["true"], ""),
        (
            op::EXEC_PROGRAM,
            ctx.program.argv.clone(),
            ctx.program.expected,
        ),
    ] {
        let argv = &argv;
        let (s, _, wall) = each(boxes.clone(), c, |b| async move {
            let (took, code, stdout) = raw.exec(&b, argv).await?;
            ensure!(
                code == 0 && stdout == expected,
                "raw {name}: exit {code}, stdout {stdout:?}"
            );
            Ok((took, ()))
        })
        .await?;
        figs.add(Side::Raw, name, s, wall);
    }

    let payload = &ctx.payload;
    let (s, _, wall) = each(boxes.clone(), c, |b| async move {
        Ok((raw.put(&b, FILE, payload).await?, ()))
    })
    .await?;
    figs.add(Side::Raw, op::PUT_FILE, s, wall);

    let (s, _, wall) = each(boxes.clone(), c, |b| async move {
        let (took, back) = raw.get(&b, FILE).await?;
        ensure!(back == payload.as_ref(), "raw get: the bytes changed");
        Ok((took, ()))
    })
    .await?;
    figs.add(Side::Raw, op::GET_FILE, s, wall);

    let (s, _, wall) = each(boxes, c, |b| async move { Ok((raw.remove(&b).await?, ())) }).await?;
    figs.add(Side::Raw, op::RAW_REMOVE, s, wall);
    Ok(())
}

/// The same work through the Docker adapter alone on `count` sandboxes
/// (reuse: the inspect a reuse makes).
pub async fn adapter_round(ctx: &Ctx<'_>, count: usize, figs: &mut Figures) -> anyhow::Result<()> {
    let adapter = ctx.adapter;
    let c = ctx.concurrency;
    let (s, boxes, wall) = each((0..count).collect(), c, |_| adapter.create()).await?;
    figs.add(Side::Adapter, op::CREATE, s, wall);
    let repeated: Vec<_> = (0..ctx.reuse_rounds)
        .flat_map(|_| boxes.iter().cloned())
        .collect();
    let (s, _, wall) = each(repeated, c, |b| async move {
        Ok((adapter.inspect(&b).await?, ()))
    })
    .await?;
    figs.add(Side::Adapter, op::REUSE, s, wall);
    for (name, argv, expected) in [
        (op::EXEC_TRUE, vec!["true"], ""),
        (
            op::EXEC_PROGRAM,
            ctx.program.argv.clone(),
            ctx.program.expected,
        ),
    ] {
        let argv = &argv;
        let (s, _, wall) = each(boxes.clone(), c, |b| async move {
            Ok((adapter.exec(&b, argv, expected).await?, ()))
        })
        .await?;
        figs.add(Side::Adapter, name, s, wall);
    }
    let payload = &ctx.payload;
    let (s, _, wall) = each(boxes.clone(), c, |b| async move {
        Ok((adapter.put(&b, FILE, payload).await?, ()))
    })
    .await?;
    figs.add(Side::Adapter, op::PUT_FILE, s, wall);
    let (s, _, wall) = each(boxes.clone(), c, |b| async move {
        Ok((adapter.get(&b, FILE, payload).await?, ()))
    })
    .await?;
    figs.add(Side::Adapter, op::GET_FILE, s, wall);
    let (s, _, wall) = each(
        boxes,
        c,
        |b| async move { Ok((adapter.stop(&b).await?, ())) },
    )
    .await?;
    figs.add(Side::Adapter, op::STOP, s, wall);
    Ok(())
}
