//! Which role each RPC needs: the one table of who may do what (docs/security.md shows it).

use super::roles::Role;

/// What a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nothing: health checks, and reflection (the API's schema is public).
    Open,
    /// A valid token of any role: reading membership, which every member and every client
    /// needs to find the others.
    AnyRole,
    /// A valid token with this role.
    Role(Role),
}

/// What the call of `path` (`/package.Service/Method`) needs. A path the table does not
/// know needs any valid token, so that nobody without one learns what is served.
pub fn access(path: &str) -> Access {
    let Some((service, method)) = path.trim_start_matches('/').split_once('/') else {
        return Access::AnyRole;
    };
    if service.starts_with("grpc.health.") || service.starts_with("grpc.reflection.") {
        return Access::Open;
    }
    match (service, method) {
        ("owlmesh.v1.Directory", "Register" | "Heartbeat" | "KeepAlive" | "Deregister") => {
            Access::Role(Role::Member)
        }
        ("owlmesh.v1.Directory", _) => Access::AnyRole,
        ("owlmesh.v1.Dispatcher", "Work") | ("owlmesh.v1.Archiver", "Archive") => {
            Access::Role(Role::Member)
        }
        (
            "owlmesh.v1.Dispatcher",
            "SubmitJob" | "PauseJob" | "ResumeJob" | "CancelJob" | "ExpediteJob",
        )
        | ("owlmesh.v1.Scraper", "Try") => Access::Role(Role::Operator),
        ("owlmesh.v1.Dispatcher" | "owlmesh.v1.Archiver" | "owlmesh.v1.Telemetry", _) => {
            Access::Role(Role::Reader)
        }
        _ => Access::AnyRole,
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use prost_types::FileDescriptorSet;

    use super::*;

    #[test]
    fn every_rpc_of_the_api_is_in_the_table_on_purpose() {
        let set = FileDescriptorSet::decode(owlmesh_proto::FILE_DESCRIPTOR_SET).expect("valid");
        let mut table = Vec::new();
        for file in &set.file {
            for service in &file.service {
                for method in &service.method {
                    let path = format!("/{}.{}/{}", file.package(), service.name(), method.name());
                    table.push(format!("{path} {:?}", access(&path)));
                }
            }
        }
        table.sort();
        // A new RPC fails this test until its line is added: who may call it is a decision.
        let expected = [
            "/owlmesh.v1.Archiver/Archive Role(Member)",
            "/owlmesh.v1.Archiver/Export Role(Reader)",
            "/owlmesh.v1.Archiver/QueryDocuments Role(Reader)",
            "/owlmesh.v1.Archiver/QueryEvents Role(Reader)",
            "/owlmesh.v1.Archiver/QueryItems Role(Reader)",
            "/owlmesh.v1.Directory/Deregister Role(Member)",
            "/owlmesh.v1.Directory/Heartbeat Role(Member)",
            "/owlmesh.v1.Directory/KeepAlive Role(Member)",
            "/owlmesh.v1.Directory/List AnyRole",
            "/owlmesh.v1.Directory/Register Role(Member)",
            "/owlmesh.v1.Directory/Resolve AnyRole",
            "/owlmesh.v1.Directory/Route AnyRole",
            "/owlmesh.v1.Directory/Watch AnyRole",
            "/owlmesh.v1.Dispatcher/CancelJob Role(Operator)",
            "/owlmesh.v1.Dispatcher/ExpediteJob Role(Operator)",
            "/owlmesh.v1.Dispatcher/GetJob Role(Reader)",
            "/owlmesh.v1.Dispatcher/ListJobs Role(Reader)",
            "/owlmesh.v1.Dispatcher/PauseJob Role(Operator)",
            "/owlmesh.v1.Dispatcher/ResumeJob Role(Operator)",
            "/owlmesh.v1.Dispatcher/SubmitJob Role(Operator)",
            "/owlmesh.v1.Dispatcher/WatchEvents Role(Reader)",
            "/owlmesh.v1.Dispatcher/Work Role(Member)",
            "/owlmesh.v1.Scraper/Try Role(Operator)",
            "/owlmesh.v1.Telemetry/GetStats Role(Reader)",
        ];
        assert_eq!(table, expected);
        assert_eq!(access("/grpc.health.v1.Health/Check"), Access::Open);
        assert_eq!(
            access("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            Access::Open
        );
        assert_eq!(access("/elsewhere.Unknown/Call"), Access::AnyRole);
    }
}
