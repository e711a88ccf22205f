//! The operation a command is: one id that ties together every audit record the command writes
//! and every error it reports, so an operator holding an error message finds its records
//! (`keystation audit show`) and the other way round.
//!
//! A front makes one [`OperationContext`] per command (the CLI per invocation, the console per
//! request) and opens or binds the station with it ([`super::Station::open_for`],
//! [`super::Station::for_operation`]). Who acts is still said per command: the operator a
//! command names (`--operator`), or the station itself for its own work; both act in the same
//! operation.

use std::fmt;

/// An operation id: a UUID v4 from the OS CSPRNG, printed in its hyphenated form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct OperationId(String);

impl OperationId {
    /// A fresh id.
    pub fn new() -> OperationId {
        OperationId(uuid::Uuid::new_v4().to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for OperationId {
    fn default() -> Self {
        OperationId::new()
    }
}

impl fmt::Display for OperationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One command's operation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OperationContext {
    id: OperationId,
}

impl OperationContext {
    /// A new operation, with a fresh id.
    pub fn new() -> OperationContext {
        OperationContext {
            id: OperationId::new(),
        }
    }

    /// Its id.
    pub fn id(&self) -> &OperationId {
        &self.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_operation_has_its_own_uuid() {
        let a = OperationContext::new();
        let b = OperationContext::new();
        assert_ne!(a.id(), b.id());
        assert_eq!(a.clone().id(), a.id());
        let parsed = uuid::Uuid::parse_str(a.id().as_str()).map(|u| u.get_version_num());
        assert_eq!(parsed.ok(), Some(4));
    }
}
