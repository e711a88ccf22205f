//! Order intake: read an application file (one order or an array), read the documents it
//! references, validate everything, and store the valid orders in one transaction.
//!
//! Hostile input is expected here: the JSON file and every document are read with a size bound,
//! document paths must stay inside the application's directory (no absolute paths, no `..`, no
//! symlink escapes), and nothing is stored unless EVERY order of the file is valid — a file is
//! taken in whole or not at all.

use super::Station;
use super::input_file::{InputFileError, read_bounded};
use crate::domain::validate::{FileFacts, MAX_DOCUMENT_BYTES, Severity, Violation, validate_order};
use crate::domain::{ImageType, ValidationContext};
use crate::store::{NewAttachment, NewOrder, StoreError};
use std::collections::{BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

/// Largest application JSON file accepted.
pub const MAX_ORDER_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Why an import did not happen.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The application has violations; nothing was stored. Every violation is listed.
    #[error("{} violation(s); nothing was imported", .0.len())]
    Invalid(Vec<Violation>),
    /// The application file itself could not be read.
    #[error("cannot read {path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Options of an import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Operator performing the import (required for an override).
    pub operator: Option<String>,
    /// Accept a USCC checksum failure with this reason (recorded).
    pub uscc_checksum_override: Option<String>,
}

/// What an import stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportReport {
    /// Order numbers stored, in file order.
    pub imported: Vec<String>,
    /// Warnings (field, code, message), located like violations.
    pub warnings: Vec<Violation>,
}

impl Station {
    /// Imports an application file. See the module docs for the rules.
    pub async fn import_orders(
        &self,
        path: &Path,
        opts: &ImportOptions,
    ) -> Result<ImportReport, IntakeError> {
        // A blank name names nobody: it must not satisfy the override's accountability rule.
        let operator = opts
            .operator
            .as_deref()
            .map(str::trim)
            .filter(|o| !o.is_empty());
        if opts.uscc_checksum_override.is_some() && operator.is_none() {
            return Err(IntakeError::Invalid(vec![Violation {
                field: "--operator".into(),
                code: "required",
                message: "a USCC checksum override must name the operator who accepts it".into(),
                severity: Severity::Error,
            }]));
        }
        let bytes = read_bounded(path, MAX_ORDER_FILE_BYTES).map_err(|e| IntakeError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            IntakeError::Invalid(vec![Violation {
                field: String::new(),
                code: "json_invalid",
                message: format!("{}: not valid JSON: {e}", path.display()),
                severity: Severity::Error,
            }])
        })?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        let (items, prefixed) = match &value {
            serde_json::Value::Array(a) => (a.iter().collect::<Vec<_>>(), true),
            v => (vec![v], false),
        };
        if items.is_empty() {
            return Err(IntakeError::Invalid(vec![Violation {
                field: String::new(),
                code: "empty",
                message: "the file holds no order".into(),
                severity: Severity::Error,
            }]));
        }
        let ctx = ValidationContext {
            today: self.clock.today_beijing(),
            uscc_checksum_override: opts.uscc_checksum_override.clone(),
        };

        let mut violations = Vec::new();
        let mut warnings = Vec::new();
        let mut new_orders = Vec::new();
        let mut seen_numbers = BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            let prefix = if prefixed {
                format!("[{i}]")
            } else {
                String::new()
            };
            let locate = |v: Violation| if prefixed { v.prefixed(&prefix) } else { v };
            let mut files = DocumentReader::new(&base);
            match validate_order(item, &ctx, &mut |p| files.probe(p)) {
                Ok(valid) => {
                    if !seen_numbers.insert(valid.order.order_no.clone()) {
                        violations.push(locate(Violation {
                            field: "order_no".into(),
                            code: "order_no_duplicate",
                            message: format!(
                                "order {} appears twice in this file",
                                valid.order.order_no
                            ),
                            severity: Severity::Error,
                        }));
                        continue;
                    }
                    warnings.extend(valid.warnings.iter().cloned().map(locate));
                    let attachments = files.attachments(&valid.order);
                    new_orders.push((
                        prefix.clone(),
                        NewOrder {
                            order: valid.order,
                            warnings: valid.warnings,
                            uscc_override_reason: valid.uscc_override_reason,
                            attachments,
                        },
                    ));
                }
                Err(vs) => {
                    for v in vs {
                        match v.severity {
                            Severity::Error => violations.push(locate(v)),
                            Severity::Warning => warnings.push(locate(v)),
                        }
                    }
                }
            }
        }

        let numbers: Vec<String> = new_orders
            .iter()
            .map(|(_, n)| n.order.order_no.clone())
            .collect();
        for existing in self.store.existing_orders(&numbers).await? {
            let prefix = new_orders
                .iter()
                .find(|(_, n)| n.order.order_no == existing)
                .map(|(p, _)| p.clone())
                .unwrap_or_default();
            let v = Violation {
                field: "order_no".into(),
                code: "order_no_duplicate",
                message: format!("order {existing} already exists"),
                severity: Severity::Error,
            };
            violations.push(if prefix.is_empty() {
                v
            } else {
                v.prefixed(&prefix)
            });
        }
        if !violations.is_empty() {
            return Err(IntakeError::Invalid(violations));
        }

        let actor = match operator {
            Some(op) => self.operator_actor(op),
            None => self.station_actor(),
        };
        let orders: Vec<NewOrder> = new_orders.into_iter().map(|(_, n)| n).collect();
        match self
            .store
            .insert_orders(&orders, &actor, self.clock.now())
            .await
        {
            Ok(()) => {}
            // Another import stored the same number between our check and our insert.
            Err(StoreError::DuplicateOrder(no)) => {
                return Err(IntakeError::Invalid(vec![Violation {
                    field: "order_no".into(),
                    code: "order_no_duplicate",
                    message: format!("order {no} already exists"),
                    severity: Severity::Error,
                }]));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(ImportReport {
            imported: numbers,
            warnings,
        })
    }
}

/// Reads an application's documents, remembering the bytes of those that pass the path rules.
struct DocumentReader {
    base: PathBuf,
    canonical_base: Option<PathBuf>,
    read: HashMap<String, (Vec<u8>, Option<ImageType>)>,
}

impl DocumentReader {
    fn new(base: &Path) -> Self {
        DocumentReader {
            base: base.to_path_buf(),
            canonical_base: std::fs::canonicalize(base).ok(),
            read: HashMap::new(),
        }
    }

    fn probe(&mut self, rel: &str) -> FileFacts {
        if let Some((bytes, image)) = self.read.get(rel) {
            return FileFacts::Found {
                size: bytes.len() as u64,
                image: *image,
            };
        }
        let p = Path::new(rel);
        if rel.is_empty() {
            return FileFacts::PathRejected("empty path");
        }
        if p.is_absolute()
            || p.components()
                .any(|c| matches!(c, Component::Prefix(_) | Component::RootDir))
        {
            return FileFacts::PathRejected(
                "absolute paths are not allowed; give a path relative to the order file",
            );
        }
        if p.components().any(|c| c == Component::ParentDir) {
            return FileFacts::PathRejected(
                "'..' is not allowed: documents must be inside the order file's directory",
            );
        }
        let full = self.base.join(p);
        let canonical = match std::fs::canonicalize(&full) {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return FileFacts::Missing,
            Err(_) => return FileFacts::Unreadable,
        };
        // A symlink inside the directory must not lead outside it.
        match &self.canonical_base {
            Some(base) if canonical.starts_with(base) => {}
            _ => {
                return FileFacts::PathRejected(
                    "the path leads outside the order file's directory",
                );
            }
        }
        match read_bounded(&canonical, MAX_DOCUMENT_BYTES) {
            Ok(bytes) => {
                let image = ImageType::sniff(&bytes);
                let facts = FileFacts::Found {
                    size: bytes.len() as u64,
                    image,
                };
                self.read.insert(rel.to_string(), (bytes, image));
                facts
            }
            Err(InputFileError::TooLarge { .. }) => FileFacts::TooLarge,
            Err(InputFileError::NotRegularFile | InputFileError::Io(_)) => FileFacts::Unreadable,
        }
    }

    fn attachments(&self, order: &crate::domain::Order) -> Vec<NewAttachment> {
        let mut out = Vec::new();
        let docs = order
            .documents
            .iter()
            .map(|d| ("document", d.kind.as_str(), &d.file));
        let seals = order
            .seals
            .iter()
            .map(|s| ("seal", s.kind.as_str(), &s.picture));
        for (role, kind, file) in docs.chain(seals) {
            if let Some((bytes, Some(image))) = self.read.get(file.as_str()) {
                out.push(NewAttachment {
                    role,
                    kind,
                    file_name: file.clone(),
                    media_type: image.media_type(),
                    content: bytes.clone(),
                });
            }
        }
        out
    }
}
