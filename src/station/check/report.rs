//! What `keystation check` found: each finding, its level, and the report of a run.

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// An invariant is broken.
    Violation,
    /// Worth knowing (unfinished job, token not present), not wrong.
    Note,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// Violation or note.
    pub level: Level,
    /// Stable rule name.
    pub rule: &'static str,
    /// The order concerned.
    pub order_no: Option<String>,
    /// What was found.
    pub message: String,
}

/// The result of a check.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CheckReport {
    /// Orders looked at.
    pub orders: usize,
    /// Tokens looked at (present in the module).
    pub tokens_checked: usize,
    /// Findings.
    pub findings: Vec<Finding>,
    /// How operator and API token changes are made: `bootstrap` (a single enabled
    /// administrator: at once) or `four_eyes` (a second administrator approves each).
    pub operator_changes: &'static str,
    /// The enabled administrators.
    pub administrators: Vec<String>,
}

impl CheckReport {
    /// True when no invariant is broken.
    pub fn ok(&self) -> bool {
        !self.findings.iter().any(|f| f.level == Level::Violation)
    }

    pub(super) fn add(
        &mut self,
        level: Level,
        rule: &'static str,
        order_no: &str,
        message: String,
    ) {
        self.findings.push(Finding {
            level,
            rule,
            order_no: (!order_no.is_empty()).then(|| order_no.to_string()),
            message,
        });
    }
}
