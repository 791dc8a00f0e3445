//! `owlmesh services` and `owlmesh route`: the directory's view of the mesh.

use owlmesh_proto::v1::{Instance, LoadState, RouteRequest};
use serde_json::json;

use crate::cli::{ClientOptions, RouteOptions};
use crate::mesh::{Mesh, status_error};

/// Prints every live instance with its state and, for dispatchers, which one is primary.
pub(crate) async fn services(options: ClientOptions) -> anyhow::Result<()> {
    let mesh = Mesh::connect(&options.directory).await?;
    let instances = mesh.list("").await?;
    let primary = mesh.dispatchers().await.ok().and_then(|dispatchers| {
        dispatchers
            .candidates()
            .first()
            .map(|first| first.id.clone())
    });
    let rows: Vec<serde_json::Value> = instances
        .iter()
        .map(|instance| {
            json!({
                "kind": instance.kind,
                "id": instance.id,
                "address": instance.address,
                "state": state(instance),
                "priority": instance.priority,
                "primary": instance.kind == "dispatcher" && Some(&instance.id) == primary.as_ref(),
                "free_slots": instance.load.as_ref().map_or(0, |load| load.free_slots),
                "queue_depth": instance.load.as_ref().map_or(0, |load| load.queue_depth),
            })
        })
        .collect();
    if options.json {
        println!("{}", serde_json::Value::Array(rows));
        return Ok(());
    }
    println!(
        "{:<11} {:<22} {:<22} {:<9} {:>8} {:>10} {:>11}  ROLE",
        "KIND", "ID", "ADDRESS", "STATE", "PRIORITY", "FREE SLOTS", "QUEUE DEPTH"
    );
    for row in rows {
        let role = match (row["kind"].as_str(), row["primary"].as_bool()) {
            (Some("dispatcher"), Some(true)) => "primary",
            (Some("dispatcher"), _) => "standby",
            _ => "",
        };
        println!(
            "{:<11} {:<22} {:<22} {:<9} {:>8} {:>10} {:>11}  {role}",
            row["kind"].as_str().unwrap_or_default(),
            row["id"].as_str().unwrap_or_default(),
            row["address"].as_str().unwrap_or_default(),
            row["state"].as_str().unwrap_or_default(),
            row["priority"],
            row["free_slots"],
            row["queue_depth"],
        );
    }
    Ok(())
}

fn state(instance: &Instance) -> &'static str {
    let load = instance.load.as_ref().map(|load| load.state());
    match load {
        Some(LoadState::Idle) => "idle",
        Some(LoadState::Busy) => "busy",
        Some(LoadState::Draining) => "draining",
        _ => "up",
    }
}

/// Prints the instance of KIND that owns KEY on the ring.
pub(crate) async fn route(options: RouteOptions) -> anyhow::Result<()> {
    let mesh = Mesh::connect(&options.client.directory).await?;
    let request = RouteRequest {
        kind: options.kind.clone(),
        key: options.key.clone(),
    };
    let owner = mesh
        .directory()
        .route(request)
        .await
        .map_err(status_error)?
        .into_inner();
    if options.client.json {
        println!(
            "{}",
            json!({"kind": owner.kind, "id": owner.id, "address": owner.address, "key": options.key})
        );
    } else {
        println!(
            "{} owns {:?}: {} at {}",
            options.kind, options.key, owner.id, owner.address
        );
    }
    Ok(())
}
