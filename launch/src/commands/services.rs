//! `owlmesh services` and `owlmesh route`: the directory's view of the mesh.

use crate::output::outln;
use owlmesh_proto::v1::{Instance, LoadState, RouteRequest};
use serde_json::json;

use crate::cli::{ClientOptions, RouteOptions};
use crate::mesh::{Mesh, status_error};

/// The columns of `owlmesh services`, in order.
const HEADER: [&str; 8] = [
    "KIND",
    "ID",
    "ADDRESS",
    "STATE",
    "PRIORITY",
    "FREE SLOTS",
    "QUEUE DEPTH",
    "ROLE",
];
/// Which columns hold numbers (right-aligned); the others are left-aligned.
const NUMERIC: [bool; 8] = [false, false, false, false, true, true, true, false];
/// Between two columns.
const GAP: &str = "  ";

/// One live instance as `owlmesh services` shows it.
#[derive(Debug, Clone, PartialEq)]
struct ServiceRow {
    kind: String,
    id: String,
    address: String,
    state: &'static str,
    priority: i32,
    primary: bool,
    free_slots: u32,
    queue_depth: u64,
}

impl ServiceRow {
    fn new(instance: &Instance, primary: Option<&str>) -> Self {
        let load = instance.load.as_ref();
        Self {
            kind: instance.kind.clone(),
            id: instance.id.clone(),
            address: instance.address.clone(),
            state: state(instance),
            priority: instance.priority,
            primary: instance.kind == "dispatcher" && primary == Some(instance.id.as_str()),
            free_slots: load.map_or(0, |load| load.free_slots),
            queue_depth: load.map_or(0, |load| load.queue_depth),
        }
    }

    /// Primary or standby for a dispatcher, nothing for the others.
    fn role(&self) -> &'static str {
        match (self.kind.as_str(), self.primary) {
            ("dispatcher", true) => "primary",
            ("dispatcher", false) => "standby",
            _ => "",
        }
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "kind": self.kind,
            "id": self.id,
            "address": self.address,
            "state": self.state,
            "priority": self.priority,
            "primary": self.primary,
            "free_slots": self.free_slots,
            "queue_depth": self.queue_depth,
        })
    }

    fn cells(&self) -> [String; 8] {
        [
            self.kind.clone(),
            self.id.clone(),
            self.address.clone(),
            self.state.to_owned(),
            self.priority.to_string(),
            self.free_slots.to_string(),
            self.queue_depth.to_string(),
            self.role().to_owned(),
        ]
    }
}

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
    let rows: Vec<ServiceRow> = instances
        .iter()
        .map(|instance| ServiceRow::new(instance, primary.as_deref()))
        .collect();
    if options.json {
        let rows = rows.iter().map(ServiceRow::json).collect();
        outln!("{}", serde_json::Value::Array(rows))?;
    } else {
        outln!("{}", table(&rows).trim_end_matches('\n'))?;
    }
    Ok(())
}

/// The rows as a text table under a header: each column as wide as its widest cell,
/// numbers right-aligned, no trailing blanks.
fn table(rows: &[ServiceRow]) -> String {
    let header = HEADER.map(str::to_owned);
    let cells: Vec<[String; 8]> = std::iter::once(header)
        .chain(rows.iter().map(ServiceRow::cells))
        .collect();
    let mut widths = [0; 8];
    for line in &cells {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in &cells {
        let mut text = String::new();
        for (column, cell) in line.iter().enumerate() {
            if column > 0 {
                text.push_str(GAP);
            }
            let width = widths[column];
            if NUMERIC[column] {
                text.push_str(&format!("{cell:>width$}"));
            } else {
                text.push_str(&format!("{cell:<width$}"));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
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
        outln!(
            "{}",
            json!({"kind": owner.kind, "id": owner.id, "address": owner.address, "key": options.key})
        )?;
    } else {
        outln!(
            "{} owns {:?}: {} at {}",
            options.kind,
            options.key,
            owner.id,
            owner.address
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, id: &str, address: &str, priority: i32, free_slots: u32) -> ServiceRow {
        ServiceRow {
            kind: kind.to_owned(),
            id: id.to_owned(),
            address: address.to_owned(),
            state: "idle",
            priority,
            primary: id == "dispatcher-0",
            free_slots,
            queue_depth: 0,
        }
    }

    #[test]
    fn the_services_table_pads_each_column_to_its_widest_cell_and_right_aligns_numbers() {
        let rows = [
            row("dispatcher", "dispatcher-0", "127.0.0.1:7701", 0, 0),
            row(
                "scraper",
                "a-scraper-with-a-long-name",
                "127.0.0.1:40123",
                0,
                256,
            ),
            row("dispatcher", "dispatcher-1", "127.0.0.1:7702", 1, 0),
        ];
        let text = table(&rows);
        let expected = "\
KIND        ID                          ADDRESS          STATE  PRIORITY  FREE SLOTS  QUEUE DEPTH  ROLE
dispatcher  dispatcher-0                127.0.0.1:7701   idle          0           0            0  primary
scraper     a-scraper-with-a-long-name  127.0.0.1:40123  idle          0         256            0
dispatcher  dispatcher-1                127.0.0.1:7702   idle          1           0            0  standby
";
        assert_eq!(text, expected);
    }

    #[test]
    fn an_empty_mesh_prints_the_header_alone() {
        assert_eq!(
            table(&[]),
            "KIND  ID  ADDRESS  STATE  PRIORITY  FREE SLOTS  QUEUE DEPTH  ROLE\n"
        );
    }
}
