//! `keystation bank import FILE.xml`: the bank's answers about PIN transfers.
//!
//! - `pain.002` (payment status report): `ACSC`, `ACCP`, `ACSP` confirm the delivery; `RJCT`
//!   fails it (with the bank's reason); other codes (`PDNG`, `ACTC`, `ACWC`, ...) leave it `sent`.
//!   A report without transaction details applies its payment-block or group status to every
//!   transfer of the original message.
//! - `camt.054` (debit notification): a booked debit of exactly 0.01 CNY carrying our
//!   `EndToEndId` confirms the delivery.
//!
//! Nothing is guessed: an unknown `EndToEndId` or `OrgnlMsgId`, a reference whose message id does
//! not match the delivery's, an amount other than 0.01 CNY, a credit instead of a debit, or a
//! delivery already confirmed is reported and changes nothing. Imports are idempotent (a second
//! import of the same file only reports) and audited (one `bank.imported` record with the file's
//! SHA-256, in the same transaction as the changes). A file imported from the inbound directory
//! is moved to `inbound/processed/` afterwards.

use super::error::DeliveryError;
use super::files::DeliveryPaths;
use super::outbox::confirm_in_tx;
use crate::audit::event::{AuditEvent, BankChange, BankImported, DeliveryRejected};
use crate::delivery::bank::{
    BankError, Camt054Report, CreditDebit, EntryStatus, MAX_INPUT_BYTES, Pain002Report,
    TxStatusCode, parse_camt054, parse_pain002,
};
use crate::domain::{DeliveryEvent, DeliveryState, OrderNo};
use crate::station::Station;
use crate::station::argument::InvalidArgument;
use crate::store::{AuditEntry, DeliveryRecord};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// What the bank says about one transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// Settled / accepted / booked.
    Confirm,
    /// Rejected, with the reason.
    Reject(String),
    /// Not final yet.
    Pending,
}

/// One statement of the file about one of our transfers.
#[derive(Debug, Clone)]
struct Statement {
    end_to_end_id: Option<String>,
    /// The delivery it was matched to.
    delivery: DeliveryRecord,
    verdict: Verdict,
    /// The bank's code (`ACSC`, `RJCT AC04`, `BOOK`...).
    code: String,
}

/// A state change made by an import.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportChange {
    /// The delivery.
    pub delivery_id: String,
    /// Its order.
    pub order_no: OrderNo,
    /// The transfer's reference.
    pub end_to_end_id: Option<String>,
    /// State before.
    pub from: DeliveryState,
    /// State after.
    pub to: DeliveryState,
    /// The bank's code.
    pub code: String,
}

/// Something in the file that was not acted on.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportNote {
    /// The reference concerned (EndToEndId or message id), as found.
    pub reference: String,
    /// Why nothing changed.
    pub note: String,
}

/// What an import did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportReport {
    /// The file.
    pub file: PathBuf,
    /// Its SHA-256.
    pub sha256: String,
    /// `pain.002` or `camt.054`.
    pub kind: &'static str,
    /// The report's `MsgId`.
    pub message_id: String,
    /// Deliveries confirmed or failed.
    pub changes: Vec<ImportChange>,
    /// Transfers the bank reports as not final yet (no change).
    pub pending: Vec<ImportNote>,
    /// Unknown or mismatching references (no change).
    pub problems: Vec<ImportNote>,
    /// Where the file was moved (imported from the inbound directory).
    pub moved_to: Option<PathBuf>,
    /// pain.001 files of the outbound directory whose transfers are now all settled: the
    /// station's copies, overwritten and removed (the bank has its own).
    pub removed_bank_files: Vec<String>,
}

enum Parsed {
    Pain002(Pain002Report),
    Camt054(Camt054Report),
}

fn verdict_of(code: &TxStatusCode, reason: Option<&str>, text: Option<&str>) -> Verdict {
    match code {
        TxStatusCode::Acsc | TxStatusCode::Accp | TxStatusCode::Acsp => Verdict::Confirm,
        TxStatusCode::Rjct => Verdict::Reject(
            [Some("RJCT"), reason, text]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
        ),
        _ => Verdict::Pending,
    }
}

fn note(reference: &str, note: impl Into<String>) -> ImportNote {
    ImportNote {
        reference: reference.to_string(),
        note: note.into(),
    }
}

/// The bank reports something (`reported`: its code or reason) that the delivery's state
/// (`state`) cannot take: nothing changes, the operator checks with the bank.
fn unexpected(
    reference: &str,
    reported: &str,
    delivery: &DeliveryRecord,
    state: DeliveryState,
) -> ImportNote {
    note(
        reference,
        format!(
            "the bank reports {reported} but delivery {} is {state}: nothing changed, check with the bank",
            delivery.id
        ),
    )
}

impl ImportChange {
    /// The change an import made to `delivery`, which was in `from`, on the bank's `code`.
    fn new(delivery: &DeliveryRecord, from: DeliveryState, code: &str) -> ImportChange {
        ImportChange {
            delivery_id: delivery.id.clone(),
            order_no: delivery.order_no.clone(),
            end_to_end_id: delivery.end_to_end_id.clone(),
            from,
            to: delivery.state,
            code: code.to_string(),
        }
    }
}

impl Station {
    /// Imports one pain.002 or camt.054 file. See the module docs.
    pub async fn bank_import(
        &self,
        path: &Path,
        operator: Option<&str>,
    ) -> Result<ImportReport, DeliveryError> {
        let bytes = read_bounded(path)?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let parsed = match parse_pain002(&bytes) {
            Ok(r) => Parsed::Pain002(r),
            Err(BankError::WrongDocument { .. }) => match parse_camt054(&bytes) {
                Ok(r) => Parsed::Camt054(r),
                Err(BankError::WrongDocument { found, .. }) => {
                    return Err(DeliveryError::Invalid(InvalidArgument {
                        field: "FILE",
                        message: format!(
                            "{} is neither a pain.002.001.11 nor a camt.054.001.08 document (found {found})",
                            path.display()
                        ),
                    }));
                }
                Err(source) => {
                    return Err(DeliveryError::BankFile {
                        path: path.display().to_string(),
                        source,
                    });
                }
            },
            Err(source) => {
                return Err(DeliveryError::BankFile {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        let mut problems = Vec::new();
        let (kind, message_id, statements) = match parsed {
            Parsed::Pain002(r) => (
                "pain.002",
                r.message_id.clone(),
                self.pain002_statements(&r, &mut problems).await?,
            ),
            Parsed::Camt054(r) => (
                "camt.054",
                r.message_id.clone(),
                self.camt054_statements(&r, &mut problems).await?,
            ),
        };

        let actor = self
            .acting_operator(operator, crate::domain::Action::ManageDelivery)
            .await?
            .1;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut changes = Vec::new();
        let mut pending = Vec::new();
        let mut tx = self.begin_write().await?;
        for st in statements {
            let reference = st
                .end_to_end_id
                .clone()
                .unwrap_or_else(|| st.delivery.id.clone());
            let mut cur = tx.delivery(&st.delivery.id).await?;
            let from = cur.state;
            let evidence = json!({
                "source": kind, "file": file_name, "file_sha256": sha256,
                "message_id": message_id, "code": st.code,
            });
            match &st.verdict {
                Verdict::Pending => {
                    pending.push(note(
                        &reference,
                        format!("{}: not final yet, still {from}", st.code),
                    ));
                }
                Verdict::Confirm => match from {
                    DeliveryState::Sending | DeliveryState::Sent | DeliveryState::NeedsOperator => {
                        tx.attempt_record(&cur.id, "import", "confirmed", Some(&message_id), None)
                            .await?;
                        confirm_in_tx(&mut tx, &actor, &self.notice_media(), &mut cur, evidence)
                            .await?;
                        changes.push(ImportChange::new(&cur, from, &st.code));
                    }
                    DeliveryState::Confirmed => {
                        problems.push(note(&reference, "already confirmed: nothing changed"));
                    }
                    other => problems.push(unexpected(&reference, &st.code, &cur, other)),
                },
                Verdict::Reject(reason) => match from {
                    DeliveryState::Sending | DeliveryState::Sent | DeliveryState::NeedsOperator => {
                        tx.attempt_record(
                            &cur.id,
                            "import",
                            "rejected",
                            Some(&message_id),
                            Some(reason),
                        )
                        .await?;
                        tx.transition_delivery(&actor, &mut cur, DeliveryEvent::Reject, |d| {
                            d.last_error = Some(format!(
                                "the bank rejected the transfer: {reason}; no transfer happened — \
                                 fix the cause, then `deliver retry --force-new-transfer` or cancel"
                            ));
                            Some(AuditEvent::DeliveryRejected(DeliveryRejected {
                                delivery_id: d.id.clone(),
                                end_to_end_id: d.end_to_end_id.clone(),
                                reason: reason.to_string(),
                                evidence: evidence.clone(),
                            }))
                        })
                        .await?;
                        changes.push(ImportChange::new(&cur, from, &st.code));
                    }
                    DeliveryState::Failed => {
                        problems.push(note(&reference, "already failed: nothing changed"));
                    }
                    other => problems.push(unexpected(&reference, reason, &cur, other)),
                },
            }
        }
        tx.audit(
            &actor,
            AuditEntry::new(AuditEvent::BankImported(BankImported {
                file: file_name.to_string(),
                sha256: sha256.clone(),
                kind: kind.to_string(),
                message_id: message_id.clone(),
                changes: changes
                    .iter()
                    .map(|c| BankChange {
                        delivery_id: c.delivery_id.clone(),
                        to: c.to,
                        code: c.code.clone(),
                    })
                    .collect(),
                pending: pending.len(),
                problems: problems.len(),
            })),
        )
        .await?;
        tx.commit().await?;
        let moved_to = self.file_away(path)?;
        // The bank has the transfers it answered for: the station's pain.001 copies go once
        // every transfer in them is settled (station_copies).
        let outbound = DeliveryPaths::resolve(&self.config).outbound_dir;
        let mut bank_files = std::collections::BTreeSet::new();
        for c in &changes {
            if let Some(f) = self
                .store
                .delivery(&c.delivery_id)
                .await?
                .and_then(|d| d.bank_file)
            {
                bank_files.insert(f);
            }
        }
        let mut removed_bank_files = Vec::new();
        for f in bank_files {
            if self.remove_settled_bank_file(&outbound, &f).await? {
                removed_bank_files.push(f);
            }
        }
        Ok(ImportReport {
            file: path.to_path_buf(),
            sha256,
            kind,
            message_id,
            changes,
            pending,
            problems,
            moved_to,
            removed_bank_files,
        })
    }

    async fn pain002_statements(
        &self,
        r: &Pain002Report,
        problems: &mut Vec<ImportNote>,
    ) -> Result<Vec<Statement>, DeliveryError> {
        let mut out = Vec::new();
        if r.transactions.is_empty() {
            // The status of a payment block, else of the group, holds for every transfer of the
            // original message (our PmtInfId equals our MsgId).
            let block = r.payment_infos.iter().find(|p| p.status.is_some());
            let (code, reason, text) = match (block, &r.group_status) {
                (Some(p), _) => (
                    p.status.clone().unwrap_or(TxStatusCode::Pdng),
                    p.reason_code.clone(),
                    p.reason_text.clone(),
                ),
                (None, Some(g)) => (
                    TxStatusCode::from_code(g),
                    r.group_reason_code.clone(),
                    r.group_reason_text.clone(),
                ),
                (None, None) => {
                    problems.push(note(&r.original_message_id, "the report carries no status"));
                    return Ok(out);
                }
            };
            if let Some(p) = block
                && p.original_payment_info_id != r.original_message_id
            {
                problems.push(note(
                    &p.original_payment_info_id,
                    "unknown payment block (keystation's PmtInfId equals its MsgId): nothing changed",
                ));
                return Ok(out);
            }
            let deliveries = self
                .store
                .deliveries_by_bank_message(&r.original_message_id)
                .await?;
            if deliveries.is_empty() {
                problems.push(note(
                    &r.original_message_id,
                    "unknown OrgnlMsgId: no pain.001 of this station has it",
                ));
            }
            let verdict = verdict_of(&code, reason.as_deref(), text.as_deref());
            for d in deliveries {
                out.push(Statement {
                    end_to_end_id: d.end_to_end_id.clone(),
                    delivery: d,
                    verdict: verdict.clone(),
                    code: code.as_code().to_string(),
                });
            }
            return Ok(out);
        }
        for t in &r.transactions {
            let Some(e2e) = &t.original_end_to_end_id else {
                problems.push(note(
                    t.original_instruction_id.as_deref().unwrap_or("-"),
                    "transaction status without OrgnlEndToEndId: ignored",
                ));
                continue;
            };
            let Some(d) = self.store.delivery_by_end_to_end_id(e2e).await? else {
                problems.push(note(e2e, "unknown EndToEndId: nothing changed"));
                continue;
            };
            if d.bank_message_id.as_deref() != Some(r.original_message_id.as_str()) {
                problems.push(note(
                    e2e,
                    format!(
                        "OrgnlMsgId {} does not match the pain.001 that carried this transfer ({}): nothing changed",
                        r.original_message_id,
                        d.bank_message_id.as_deref().unwrap_or("none")
                    ),
                ));
                continue;
            }
            let code = match &t.reason_code {
                Some(rc) => format!("{} {rc}", t.status.as_code()),
                None => t.status.as_code().to_string(),
            };
            out.push(Statement {
                end_to_end_id: Some(e2e.clone()),
                delivery: d,
                verdict: verdict_of(
                    &t.status,
                    t.reason_code.as_deref(),
                    t.reason_text.as_deref(),
                ),
                code,
            });
        }
        Ok(out)
    }

    async fn camt054_statements(
        &self,
        r: &Camt054Report,
        problems: &mut Vec<ImportNote>,
    ) -> Result<Vec<Statement>, DeliveryError> {
        let mut out = Vec::new();
        for e in &r.entries {
            let Some(e2e) = &e.end_to_end_id else {
                problems.push(note(
                    "-",
                    "entry without EndToEndId: not a keystation transfer, ignored",
                ));
                continue;
            };
            let Some(d) = self.store.delivery_by_end_to_end_id(e2e).await? else {
                problems.push(note(e2e, "unknown EndToEndId: nothing changed"));
                continue;
            };
            if e.credit_debit != CreditDebit::Debit {
                problems.push(note(
                    e2e,
                    "a credit, not the station's debit: nothing changed",
                ));
                continue;
            }
            if e.currency != "CNY" || e.amount_minor != 1 {
                problems.push(note(
                    e2e,
                    format!(
                        "amount is {} minor units of {}, not 0.01 CNY: nothing changed, check with the bank",
                        e.amount_minor, e.currency
                    ),
                ));
                continue;
            }
            let (verdict, code) = match &e.status {
                EntryStatus::Booked => (Verdict::Confirm, "BOOK".to_string()),
                EntryStatus::Pending => (Verdict::Pending, "PDNG".to_string()),
                EntryStatus::Other(c) => (Verdict::Pending, c.clone()),
            };
            out.push(Statement {
                end_to_end_id: Some(e2e.clone()),
                delivery: d,
                verdict,
                code,
            });
        }
        Ok(out)
    }

    /// Moves a file imported from the inbound directory to `inbound/processed/` (never over an
    /// existing file). Files imported from elsewhere stay where they are.
    fn file_away(&self, path: &Path) -> Result<Option<PathBuf>, DeliveryError> {
        let inbound = DeliveryPaths::resolve(&self.config).inbound_dir;
        let (Ok(inbound), Some(parent)) = (
            std::fs::canonicalize(&inbound),
            path.parent().and_then(|p| {
                std::fs::canonicalize(if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                })
                .ok()
            }),
        ) else {
            return Ok(None);
        };
        if parent != inbound {
            return Ok(None);
        }
        let processed = inbound.join("processed");
        super::files::ensure_dir(&processed)?;
        let Some(name) = path.file_name() else {
            return Ok(None);
        };
        let mut target = processed.join(name);
        let mut n = 1;
        while target.exists() {
            target = processed.join(format!("{}.{n}", name.to_string_lossy()));
            n += 1;
        }
        std::fs::rename(path, &target).map_err(|source| DeliveryError::Io {
            what: "moving an imported file to",
            path: target.display().to_string(),
            source,
        })?;
        // The bank's file names the companies' accounts: private like everything the station
        // keeps, whatever mode the bank's agent wrote it with.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).map_err(
                |source| DeliveryError::Io {
                    what: "restricting the mode of",
                    path: target.display().to_string(),
                    source,
                },
            )?;
        }
        Ok(Some(target))
    }
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, DeliveryError> {
    use std::io::Read;
    let io = |source| DeliveryError::Io {
        what: "reading",
        path: path.display().to_string(),
        source,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    f.take(MAX_INPUT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(DeliveryError::BankFile {
            path: path.display().to_string(),
            source: BankError::InputTooLarge {
                size: bytes.len(),
                limit: MAX_INPUT_BYTES,
            },
        });
    }
    Ok(bytes)
}
