//! The three roles a token may carry, and a set of them.

use std::fmt;

/// What a caller may do. A token carries one or more roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A service of the mesh: register and heartbeat, open work sessions, write the archive.
    Member,
    /// Steers jobs: submit, pause, resume, cancel, expedite, and `Try` a page.
    Operator,
    /// Reads: job status and lists, exports and queries, event and stats streams.
    Reader,
}

impl Role {
    /// Every role, in the order they are written.
    pub const ALL: [Role; 3] = [Role::Member, Role::Operator, Role::Reader];

    /// The role's name in token files and messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Operator => "operator",
            Self::Reader => "reader",
        }
    }

    /// The role of that name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.name() == name)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Roles(u8);

impl Roles {
    /// Every role: what a token written without roles carries.
    pub const ALL: Roles = Roles(0b111);

    /// The set of `roles`.
    pub fn of(roles: impl IntoIterator<Item = Role>) -> Self {
        Self(
            roles
                .into_iter()
                .fold(0, |bits, role| bits | Self::bit(role)),
        )
    }

    /// Whether `role` is in the set.
    pub fn contains(self, role: Role) -> bool {
        self.0 & Self::bit(role) != 0
    }

    fn bit(role: Role) -> u8 {
        match role {
            Role::Member => 1,
            Role::Operator => 2,
            Role::Reader => 4,
        }
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Role::ALL
            .into_iter()
            .filter(|role| self.contains(*role))
            .map(Role::name)
            .collect();
        f.write_str(&names.join(","))
    }
}
