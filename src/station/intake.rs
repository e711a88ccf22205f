//! Order intake: read an application file (one order or an array), read the documents it
//! references, validate everything, and store the valid orders in one transaction.
//!
//! The validation of an application (`check_items`) is shared with the order API
//! (`station::api_orders`), whose documents come with the request (`DocumentSource::Inline`)
//! instead of from the application file's directory.
//!
//! Hostile input is expected here: the JSON file and every document are read with a size bound,
//! document paths must stay inside the application's directory (no absolute paths, no `..`, no
//! symlink escapes), and nothing is stored unless EVERY order of the file is valid — a file is
//! taken in whole or not at all.
//!
//! The JSON is read strictly ([`parse_application`]: a leading BOM skipped, duplicate keys
//! refused). Every seal picture is run through the very normalisation provisioning will apply
//! ([`normalize_seal_picture`], bounded in memory before decoding), so a picture that could not
//! become a seal (too large, blank, corrupt) is refused here, naming its field, and never
//! reaches a token.

use super::Station;
use super::input_file::{InputFileError, read_bounded};
use crate::domain::application_json::{ApplicationJsonError, parse_application};
use crate::domain::validate::{FileFacts, MAX_DOCUMENT_BYTES, Severity, Violation, validate_order};
use crate::domain::{Action, FileUse, ImageType, OrderNo, PictureProblem, ValidationContext};
use crate::seal::{NORMALIZATION_VERSION, SealError, normalize_seal_picture};
use crate::store::{HashedBytes, KeptPicture, NewAttachment, NewOrder, StoreError};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Largest application JSON file accepted.
pub const MAX_ORDER_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Why an import did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    pub imported: Vec<OrderNo>,
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
        let value = parse_application(&bytes).map_err(|e| match e {
            ApplicationJsonError::Syntax(e) => IntakeError::Invalid(vec![Violation {
                field: String::new(),
                code: "json_invalid",
                message: format!("{}: not valid JSON: {e}", path.display()),
                severity: Severity::Error,
            }]),
            ApplicationJsonError::DuplicateKeys(vs) => IntakeError::Invalid(vs),
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

        let Checked {
            orders: new_orders,
            mut violations,
            warnings,
        } = check_items(&items, prefixed, DocumentSource::Directory(&base), &ctx);

        let numbers: Vec<OrderNo> = new_orders
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

        let actor = self.acting_operator(operator, Action::ImportOrder).await?.1;
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

/// Where an application's documents come from.
pub(super) enum DocumentSource<'a> {
    /// Files under the application file's directory (`order import`).
    Directory(&'a Path),
    /// Sent with the application, by the name its form gives (the order API).
    Inline(&'a BTreeMap<String, Vec<u8>>),
}

/// The orders of an application that passed validation, with their attachments, ready to
/// store (each with the prefix that locates it in the application: `[i]` or nothing), and
/// everything wrong or worth a look. Whether a number exists already is the caller's question.
pub(super) struct Checked {
    /// Valid orders.
    pub orders: Vec<(String, NewOrder)>,
    /// Error-severity violations, located.
    pub violations: Vec<Violation>,
    /// Warnings, located.
    pub warnings: Vec<Violation>,
}

/// Validates each of `items` (an array's elements when `prefixed`), reading its documents from
/// `source`: the one validation of an application, for a file and for the API alike.
pub(super) fn check_items(
    items: &[&serde_json::Value],
    prefixed: bool,
    source: DocumentSource<'_>,
    ctx: &ValidationContext,
) -> Checked {
    let mut violations = Vec::new();
    let mut warnings = Vec::new();
    let mut new_orders = Vec::new();
    let mut seen_numbers = BTreeSet::new();
    let mut files = DocumentReader::new(&source);
    for (i, item) in items.iter().enumerate() {
        let prefix = if prefixed {
            format!("[{i}]")
        } else {
            String::new()
        };
        let locate = |v: Violation| if prefixed { v.prefixed(&prefix) } else { v };
        match validate_order(item, ctx, &mut |p, u| files.probe(p, u)) {
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

    Checked {
        orders: new_orders,
        violations,
        warnings,
    }
}

/// What normalising each distinct seal picture of one import gave, by SHA-256 of its bytes: a
/// picture shared by many orders of a file (a batch from one customer) is decoded once, and its
/// normalised PNG is kept with the orders (provisioning seals it without normalising again).
#[derive(Default)]
struct PictureVerdicts(HashMap<Arc<str>, Result<HashedBytes, PictureProblem>>);

impl PictureVerdicts {
    /// The normalised PNG of `picture`, or why provisioning could not make a seal of it.
    fn check(&mut self, picture: &HashedBytes) -> &Result<HashedBytes, PictureProblem> {
        self.0.entry(picture.sha256().into()).or_insert_with(|| {
            match normalize_seal_picture(picture.bytes()) {
                Ok(normalized) => Ok(HashedBytes::new(normalized.png)),
                Err(SealError::PictureTooLarge {
                    width,
                    height,
                    max_side,
                }) => Err(PictureProblem::TooLarge {
                    width,
                    height,
                    max_side,
                }),
                Err(SealError::EmptyPicture) => Err(PictureProblem::Empty),
                Err(SealError::UnreadablePicture(why)) => Err(PictureProblem::Unreadable(why)),
                Err(e) => Err(PictureProblem::Unreadable(e.to_string())),
            }
        })
    }

    /// The kept PNG of a picture [`PictureVerdicts::check`] accepted.
    fn kept(&self, picture: &HashedBytes) -> Option<KeptPicture> {
        match self.0.get(picture.sha256()) {
            Some(Ok(png)) => Some(KeptPicture {
                version: NORMALIZATION_VERSION,
                png: png.clone(),
            }),
            _ => None,
        }
    }
}

/// Reads an application's documents, remembering the bytes (hashed once, as they are read) of
/// those that pass the path rules: a file many orders of the application reference is read once.
struct DocumentReader<'s> {
    source: &'s DocumentSource<'s>,
    canonical_base: Option<PathBuf>,
    read: HashMap<String, (HashedBytes, Option<ImageType>)>,
    pictures: PictureVerdicts,
}

impl<'s> DocumentReader<'s> {
    fn new(source: &'s DocumentSource<'s>) -> Self {
        DocumentReader {
            source,
            canonical_base: match source {
                DocumentSource::Directory(base) => std::fs::canonicalize(base).ok(),
                DocumentSource::Inline(_) => None,
            },
            read: HashMap::new(),
            pictures: PictureVerdicts::default(),
        }
    }

    /// What is at `rel`; for a seal picture of an accepted type, also whether it normalises.
    fn probe(&mut self, rel: &str, use_: FileUse) -> FileFacts {
        let facts = self.read_file(rel);
        if use_ == FileUse::SealPicture {
            if let (
                FileFacts::Found { .. },
                Some((bytes, Some(ImageType::Png | ImageType::Jpeg))),
            ) = (&facts, self.read.get(rel))
            {
                if let Err(problem) = self.pictures.check(bytes) {
                    return FileFacts::BadPicture(problem.clone());
                }
            }
        }
        facts
    }

    fn read_file(&mut self, rel: &str) -> FileFacts {
        if let Some((bytes, image)) = self.read.get(rel) {
            return FileFacts::Found {
                size: bytes.bytes().len() as u64,
                image: *image,
            };
        }
        let bytes = match self.source {
            DocumentSource::Directory(base) => match self.read_under(base, rel) {
                Ok(bytes) => bytes,
                Err(facts) => return facts,
            },
            DocumentSource::Inline(files) => match files.get(rel) {
                None => return FileFacts::Missing,
                Some(b) if b.len() as u64 > MAX_DOCUMENT_BYTES => return FileFacts::TooLarge,
                Some(b) => b.clone(),
            },
        };
        let image = ImageType::sniff(&bytes);
        let facts = FileFacts::Found {
            size: bytes.len() as u64,
            image,
        };
        self.read
            .insert(rel.to_string(), (HashedBytes::new(bytes), image));
        facts
    }

    /// The bytes of the file `rel` under `base`, by the path rules of the module docs.
    fn read_under(&self, base: &Path, rel: &str) -> Result<Vec<u8>, FileFacts> {
        let p = Path::new(rel);
        if rel.is_empty() {
            return Err(FileFacts::PathRejected("empty path"));
        }
        if p.is_absolute()
            || p.components()
                .any(|c| matches!(c, Component::Prefix(_) | Component::RootDir))
        {
            return Err(FileFacts::PathRejected(
                "absolute paths are not allowed; give a path relative to the order file",
            ));
        }
        if p.components().any(|c| c == Component::ParentDir) {
            return Err(FileFacts::PathRejected(
                "'..' is not allowed: documents must be inside the order file's directory",
            ));
        }
        let full = base.join(p);
        let canonical = match std::fs::canonicalize(&full) {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(FileFacts::Missing),
            Err(_) => return Err(FileFacts::Unreadable),
        };
        // A symlink inside the directory must not lead outside it.
        match &self.canonical_base {
            Some(base) if canonical.starts_with(base) => {}
            _ => {
                return Err(FileFacts::PathRejected(
                    "the path leads outside the order file's directory",
                ));
            }
        }
        read_bounded(&canonical, MAX_DOCUMENT_BYTES).map_err(|e| match e {
            InputFileError::TooLarge { .. } => FileFacts::TooLarge,
            InputFileError::NotRegularFile | InputFileError::Io(_) => FileFacts::Unreadable,
        })
    }

    /// The order's attachments, sharing the bytes read (never copied per order).
    fn attachments(&self, order: &crate::domain::Order) -> Vec<NewAttachment> {
        let mut out = Vec::new();
        for (role, kind, file) in order.attached_files() {
            if let Some((bytes, Some(image))) = self.read.get(file.as_str()) {
                out.push(NewAttachment {
                    role,
                    kind,
                    file_name: file.clone(),
                    media_type: image.media_type(),
                    content: bytes.clone(),
                    normalized: (role == "seal")
                        .then(|| self.pictures.kept(bytes))
                        .flatten(),
                });
            }
        }
        out
    }
}
