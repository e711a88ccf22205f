//! Reader of the bank's `pain.002.001.11` customer payment status report: how the station
//! learns that a PIN transfer was accepted (`ACSC`, `ACCP`, ...) or rejected (`RJCT` with a
//! reason), by the original message, payment block and end-to-end id.
//!
//! A status is reported at the highest level where it holds for everything below: a transaction
//! without `TxSts` takes its block's status, else the group's; none at all is an error, never a
//! guess. The document is read by `xml_reader` (limits, no DTD, no entities).

use super::xml_reader::{Handler, missing, non_empty, read_document, set_once};
use super::{BankError, MAX_EXTRACTED_CHARS, PAIN002_NAMESPACE};

/// A status code of a transaction or payment block (`ExternalPaymentTransactionStatus1Code`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxStatusCode {
    /// `ACSC` accepted, settlement completed: the cent has left the station's account.
    Acsc,
    /// `ACCP` accepted after customer profile checks.
    Accp,
    /// `ACSP` accepted, settlement in process.
    Acsp,
    /// `ACTC` accepted after technical validation only.
    Actc,
    /// `ACWC` accepted with change (e.g. execution date moved).
    Acwc,
    /// `PDNG` pending.
    Pdng,
    /// `RJCT` rejected: see the reason code (e.g. `AC04` closed account).
    Rjct,
    /// Any other code, as received ([`TxStatusCode::from_code`] never puts a named code here).
    Other(String),
}

impl TxStatusCode {
    /// Maps a code as found in a report (`Other` keeps unknown codes verbatim).
    pub fn from_code(code: &str) -> Self {
        match code {
            "ACSC" => Self::Acsc,
            "ACCP" => Self::Accp,
            "ACSP" => Self::Acsp,
            "ACTC" => Self::Actc,
            "ACWC" => Self::Acwc,
            "PDNG" => Self::Pdng,
            "RJCT" => Self::Rjct,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The code as written in a report.
    pub fn as_code(&self) -> &str {
        match self {
            Self::Acsc => "ACSC",
            Self::Accp => "ACCP",
            Self::Acsp => "ACSP",
            Self::Actc => "ACTC",
            Self::Acwc => "ACWC",
            Self::Pdng => "PDNG",
            Self::Rjct => "RJCT",
            Self::Other(code) => code,
        }
    }
}

/// Status of one original payment information block (`OrgnlPmtInfAndSts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentInfoStatus {
    /// `OrgnlPmtInfId`: the `PmtInfId` of the `pain.001`.
    pub original_payment_info_id: String,
    /// `PmtInfSts`, when the bank reports the block as a whole (e.g. the whole block rejected).
    pub status: Option<TxStatusCode>,
    /// First reason code (`StsRsnInf/Rsn/Cd` or `Prtry`).
    pub reason_code: Option<String>,
    /// `StsRsnInf/AddtlInf` lines, joined with spaces.
    pub reason_text: Option<String>,
}

/// Status of one original transaction (`TxInfAndSts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxStatus {
    /// `OrgnlPmtInfId` of the enclosing block.
    pub original_payment_info_id: String,
    /// `OrgnlInstrId`.
    pub original_instruction_id: Option<String>,
    /// `OrgnlEndToEndId`: how the station maps the status back to a delivery.
    pub original_end_to_end_id: Option<String>,
    /// `TxSts`; when absent, the status of the enclosing block, else the group status applies
    /// (ISO 20022 reports a status at the highest level where it holds for everything below).
    pub status: TxStatusCode,
    /// First reason code (`StsRsnInf/Rsn/Cd` or `Prtry`), e.g. `AC04`.
    pub reason_code: Option<String>,
    /// `StsRsnInf/AddtlInf` lines, joined with spaces.
    pub reason_text: Option<String>,
}

/// A `pain.002.001.11` customer payment status report.
///
/// When `transactions` is empty the group (or payment block) status applies to every transfer of
/// the original message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pain002Report {
    /// `GrpHdr/MsgId` of the report.
    pub message_id: String,
    /// `OrgnlGrpInfAndSts/OrgnlMsgId`: the `MsgId` of the `pain.001`.
    pub original_message_id: String,
    /// `OrgnlGrpInfAndSts/GrpSts` (e.g. `ACCP`, `ACSC`, `RJCT`, `PART`).
    pub group_status: Option<String>,
    /// First group-level reason code.
    pub group_reason_code: Option<String>,
    /// Group-level `AddtlInf` lines, joined with spaces.
    pub group_reason_text: Option<String>,
    /// The `OrgnlPmtInfAndSts` blocks, in document order.
    pub payment_infos: Vec<PaymentInfoStatus>,
    /// Every `TxInfAndSts`, in document order (grouped by payment block).
    pub transactions: Vec<TxStatus>,
}

/// Reason information: the first code, and every `AddtlInf` line.
#[derive(Default)]
struct ReasonBuilder {
    code: Option<String>,
    texts: Vec<String>,
    /// Characters of `texts` joined with spaces, i.e. of what [`Self::text`] returns.
    joined_chars: usize,
}

impl ReasonBuilder {
    fn add_code(&mut self, code: String) {
        // StsRsnInf repeats; the first reason is the primary one.
        if self.code.is_none() {
            self.code = Some(code);
        }
    }

    /// Adds an `AddtlInf` line. Each line is already bounded by `MAX_EXTRACTED_CHARS`, but the
    /// lines repeat without limit and are joined into ONE extracted value, so the bound applies
    /// to the joined text too.
    fn add_text(&mut self, text: String, path: &[&str]) -> Result<(), BankError> {
        let joined = self.joined_chars + usize::from(!self.texts.is_empty()) + text.chars().count();
        if joined > MAX_EXTRACTED_CHARS {
            return Err(BankError::InvalidValue {
                path: path.join("/"),
                reason: format!("lines longer than {MAX_EXTRACTED_CHARS} characters in all"),
            });
        }
        self.joined_chars = joined;
        self.texts.push(text);
        Ok(())
    }

    fn text(&self) -> Option<String> {
        (!self.texts.is_empty()).then(|| self.texts.join(" "))
    }
}

// ---------------------------------------------------------------------------------------------
// The reader's handler
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct TxBuilder {
    instruction_id: Option<String>,
    end_to_end_id: Option<String>,
    status: Option<String>,
    reason: ReasonBuilder,
}

#[derive(Default)]
struct PmtInfBuilder {
    id: Option<String>,
    status: Option<String>,
    reason: ReasonBuilder,
    txs: Vec<TxBuilder>,
}

#[derive(Default)]
struct Pain002Builder {
    message_id: Option<String>,
    original_message_id: Option<String>,
    group_status: Option<String>,
    group_reason: ReasonBuilder,
    payment_infos: Vec<PmtInfBuilder>,
}

#[derive(Clone, Copy)]
enum Level {
    Group,
    PmtInf,
    Tx,
}

#[derive(Clone, Copy)]
enum P2Field {
    MsgId,
    OrgnlMsgId,
    GrpSts,
    PmtInfId,
    PmtInfSts,
    InstrId,
    EndToEndId,
    TxSts,
    ReasonCode(Level),
    ReasonText(Level),
}

/// The message element below `Document`.
pub(super) const P2_ROOT: &str = "CstmrPmtStsRpt";

fn reason_field(level: Level, rest: &[&str]) -> Option<P2Field> {
    match rest {
        ["StsRsnInf", "Rsn", "Cd" | "Prtry"] => Some(P2Field::ReasonCode(level)),
        ["StsRsnInf", "AddtlInf"] => Some(P2Field::ReasonText(level)),
        _ => None,
    }
}

fn p2_field(path: &[&str]) -> Option<P2Field> {
    let [root, rest @ ..] = path else {
        return None;
    };
    if *root != P2_ROOT {
        return None;
    }
    match rest {
        ["GrpHdr", "MsgId"] => Some(P2Field::MsgId),
        ["OrgnlGrpInfAndSts", "OrgnlMsgId"] => Some(P2Field::OrgnlMsgId),
        ["OrgnlGrpInfAndSts", "GrpSts"] => Some(P2Field::GrpSts),
        ["OrgnlGrpInfAndSts", rest @ ..] => reason_field(Level::Group, rest),
        ["OrgnlPmtInfAndSts", "OrgnlPmtInfId"] => Some(P2Field::PmtInfId),
        ["OrgnlPmtInfAndSts", "PmtInfSts"] => Some(P2Field::PmtInfSts),
        ["OrgnlPmtInfAndSts", "TxInfAndSts", "OrgnlInstrId"] => Some(P2Field::InstrId),
        ["OrgnlPmtInfAndSts", "TxInfAndSts", "OrgnlEndToEndId"] => Some(P2Field::EndToEndId),
        ["OrgnlPmtInfAndSts", "TxInfAndSts", "TxSts"] => Some(P2Field::TxSts),
        ["OrgnlPmtInfAndSts", "TxInfAndSts", rest @ ..] => reason_field(Level::Tx, rest),
        ["OrgnlPmtInfAndSts", rest @ ..] => reason_field(Level::PmtInf, rest),
        _ => None,
    }
}

impl Pain002Builder {
    fn pmt_inf(&mut self) -> Result<&mut PmtInfBuilder, BankError> {
        self.payment_infos
            .last_mut()
            .ok_or_else(|| missing("CstmrPmtStsRpt/OrgnlPmtInfAndSts"))
    }

    fn tx(&mut self) -> Result<&mut TxBuilder, BankError> {
        self.pmt_inf()?
            .txs
            .last_mut()
            .ok_or_else(|| missing("CstmrPmtStsRpt/OrgnlPmtInfAndSts/TxInfAndSts"))
    }

    fn reason(&mut self, level: Level) -> Result<&mut ReasonBuilder, BankError> {
        Ok(match level {
            Level::Group => &mut self.group_reason,
            Level::PmtInf => &mut self.pmt_inf()?.reason,
            Level::Tx => &mut self.tx()?.reason,
        })
    }

    fn finish(self) -> Result<Pain002Report, BankError> {
        let message_id = self
            .message_id
            .ok_or_else(|| missing("CstmrPmtStsRpt/GrpHdr/MsgId"))?;
        let original_message_id = self
            .original_message_id
            .ok_or_else(|| missing("CstmrPmtStsRpt/OrgnlGrpInfAndSts/OrgnlMsgId"))?;
        let mut payment_infos = Vec::with_capacity(self.payment_infos.len());
        let mut transactions = Vec::new();
        for p in self.payment_infos {
            let id =
                p.id.ok_or_else(|| missing("CstmrPmtStsRpt/OrgnlPmtInfAndSts/OrgnlPmtInfId"))?;
            for t in p.txs {
                let status = t
                    .status
                    .as_deref()
                    .or(p.status.as_deref())
                    .or(self.group_status.as_deref())
                    .map(TxStatusCode::from_code)
                    .ok_or_else(|| missing("CstmrPmtStsRpt/OrgnlPmtInfAndSts/TxInfAndSts/TxSts"))?;
                transactions.push(TxStatus {
                    original_payment_info_id: id.clone(),
                    original_instruction_id: t.instruction_id,
                    original_end_to_end_id: t.end_to_end_id,
                    status,
                    reason_text: t.reason.text(),
                    reason_code: t.reason.code,
                });
            }
            payment_infos.push(PaymentInfoStatus {
                original_payment_info_id: id,
                status: p.status.as_deref().map(TxStatusCode::from_code),
                reason_text: p.reason.text(),
                reason_code: p.reason.code,
            });
        }
        Ok(Pain002Report {
            message_id,
            original_message_id,
            group_status: self.group_status,
            group_reason_text: self.group_reason.text(),
            group_reason_code: self.group_reason.code,
            payment_infos,
            transactions,
        })
    }
}

impl Handler for Pain002Builder {
    fn start(&mut self, path: &[&str], _attrs: &[(String, String)]) -> Result<bool, BankError> {
        match path {
            [P2_ROOT, "OrgnlPmtInfAndSts"] => self.payment_infos.push(PmtInfBuilder::default()),
            [P2_ROOT, "OrgnlPmtInfAndSts", "TxInfAndSts"] => {
                self.pmt_inf()?.txs.push(TxBuilder::default());
            }
            _ => {}
        }
        Ok(p2_field(path).is_some())
    }

    fn end(&mut self, path: &[&str], text: Option<String>) -> Result<(), BankError> {
        let Some(field) = p2_field(path) else {
            return Ok(());
        };
        let value = non_empty(text, path)?;
        match field {
            P2Field::MsgId => set_once(&mut self.message_id, value, path),
            P2Field::OrgnlMsgId => set_once(&mut self.original_message_id, value, path),
            P2Field::GrpSts => set_once(&mut self.group_status, value, path),
            P2Field::PmtInfId => set_once(&mut self.pmt_inf()?.id, value, path),
            P2Field::PmtInfSts => set_once(&mut self.pmt_inf()?.status, value, path),
            P2Field::InstrId => set_once(&mut self.tx()?.instruction_id, value, path),
            P2Field::EndToEndId => set_once(&mut self.tx()?.end_to_end_id, value, path),
            P2Field::TxSts => set_once(&mut self.tx()?.status, value, path),
            P2Field::ReasonCode(level) => {
                self.reason(level)?.add_code(value);
                Ok(())
            }
            P2Field::ReasonText(level) => self.reason(level)?.add_text(value, path),
        }
    }
}

/// Parses a `pain.002.001.11` status report (see the module invariants for hostile input).
pub fn parse_pain002(xml: &[u8]) -> Result<Pain002Report, BankError> {
    let mut builder = Pain002Builder::default();
    read_document(xml, PAIN002_NAMESPACE, &mut builder)?;
    builder.finish()
}

#[cfg(test)]
mod tests;
