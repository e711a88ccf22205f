//! Reader of the bank's `camt.054.001.08` debit/credit notification: the booked entries of the
//! station's account, each with its end-to-end id, amount in minor units and direction, so a
//! booked 0.01 CNY debit confirms a PIN transfer. The document is read by
//! `xml_reader` (limits, no DTD, no entities).

use super::xml_reader::{Handler, missing, non_empty, read_document, set_once, trim_xml};
use super::{BankError, CAMT054_NAMESPACE};

/// Direction of an entry (`CdtDbtInd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditDebit {
    /// `DBIT`: money left the account (the station's side of a PIN transfer).
    Debit,
    /// `CRDT`: money arrived.
    Credit,
}

/// Status of an entry (`Ntry/Sts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryStatus {
    /// `BOOK`: booked, final.
    Booked,
    /// `PDNG`: pending.
    Pending,
    /// Any other code (`INFO`, `FUTR`, proprietary), as received.
    Other(String),
}

/// One transaction of a `camt.054` entry (one per `TxDtls`, or the entry itself when it has no
/// transaction details).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookedTx {
    /// `TxDtls/Refs/EndToEndId`.
    pub end_to_end_id: Option<String>,
    /// Amount in minor units of `currency` (fen for CNY).
    pub amount_minor: u64,
    /// ISO 4217 code from the amount's `Ccy`.
    pub currency: String,
    /// `CdtDbtInd` of the transaction, else of the entry.
    pub credit_debit: CreditDebit,
    /// `Ntry/Sts` of the enclosing entry.
    pub status: EntryStatus,
    /// `Ntry/BookgDt/Dt` or `DtTm`, as written.
    pub booking_date: Option<String>,
}

/// A `camt.054.001.08` bank-to-customer debit/credit notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Camt054Report {
    /// `GrpHdr/MsgId`.
    pub message_id: String,
    /// The transactions of all entries of all notifications, in document order.
    pub entries: Vec<BookedTx>,
}

// ---------------------------------------------------------------------------------------------
// The reader's handler
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct AmountBuilder {
    value: Option<String>,
    currency: Option<String>,
}

#[derive(Default)]
struct CamtTxBuilder {
    end_to_end_id: Option<String>,
    amount: AmountBuilder,
    credit_debit: Option<String>,
}

#[derive(Default)]
struct EntryBuilder {
    amount: AmountBuilder,
    credit_debit: Option<String>,
    status: Option<String>,
    booking_date: Option<String>,
    txs: Vec<CamtTxBuilder>,
}

#[derive(Default)]
struct Camt054Builder {
    message_id: Option<String>,
    entries: Vec<EntryBuilder>,
}

#[derive(Clone, Copy)]
enum CamtField {
    MsgId,
    EntryAmount,
    EntryCreditDebit,
    EntryStatus,
    BookingDate,
    TxEndToEndId,
    TxAmount,
    TxCreditDebit,
}

const CAMT_ROOT: &str = "BkToCstmrDbtCdtNtfctn";
const ENTRY_PATH: &str = "BkToCstmrDbtCdtNtfctn/Ntfctn/Ntry";
const TX_PATH: &str = "BkToCstmrDbtCdtNtfctn/Ntfctn/Ntry/NtryDtls/TxDtls";

fn camt_field(path: &[&str]) -> Option<CamtField> {
    match path {
        [CAMT_ROOT, "GrpHdr", "MsgId"] => Some(CamtField::MsgId),
        [CAMT_ROOT, "Ntfctn", "Ntry", rest @ ..] => match rest {
            ["Amt"] => Some(CamtField::EntryAmount),
            ["CdtDbtInd"] => Some(CamtField::EntryCreditDebit),
            ["Sts", "Cd" | "Prtry"] => Some(CamtField::EntryStatus),
            ["BookgDt", "Dt" | "DtTm"] => Some(CamtField::BookingDate),
            ["NtryDtls", "TxDtls", "Refs", "EndToEndId"] => Some(CamtField::TxEndToEndId),
            ["NtryDtls", "TxDtls", "Amt"] => Some(CamtField::TxAmount),
            ["NtryDtls", "TxDtls", "CdtDbtInd"] => Some(CamtField::TxCreditDebit),
            _ => None,
        },
        _ => None,
    }
}

impl Camt054Builder {
    fn entry(&mut self) -> Result<&mut EntryBuilder, BankError> {
        self.entries.last_mut().ok_or_else(|| missing(ENTRY_PATH))
    }

    fn tx(&mut self) -> Result<&mut CamtTxBuilder, BankError> {
        self.entry()?.txs.last_mut().ok_or_else(|| missing(TX_PATH))
    }

    fn finish(self) -> Result<Camt054Report, BankError> {
        let message_id = self
            .message_id
            .ok_or_else(|| missing("BkToCstmrDbtCdtNtfctn/GrpHdr/MsgId"))?;
        let mut out = Vec::new();
        for e in self.entries {
            let amount_path = format!("{ENTRY_PATH}/Amt");
            let (currency, amount_minor) = e.amount.parse(&amount_path)?;
            let credit_debit = parse_credit_debit(
                e.credit_debit.as_deref(),
                &format!("{ENTRY_PATH}/CdtDbtInd"),
            )?;
            let status = match e.status.as_deref() {
                Some("BOOK") => EntryStatus::Booked,
                Some("PDNG") => EntryStatus::Pending,
                Some(other) => EntryStatus::Other(other.to_owned()),
                None => return Err(missing(&format!("{ENTRY_PATH}/Sts"))),
            };
            if e.txs.is_empty() {
                out.push(BookedTx {
                    end_to_end_id: None,
                    amount_minor,
                    currency,
                    credit_debit,
                    status,
                    booking_date: e.booking_date,
                });
                continue;
            }
            let single = e.txs.len() == 1;
            for t in e.txs {
                // A lone transaction may omit its amount: it is the entry's amount then.
                let (tx_currency, tx_amount) = if t.amount.value.is_some() || !single {
                    t.amount.parse(&format!("{TX_PATH}/Amt"))?
                } else {
                    (currency.clone(), amount_minor)
                };
                let tx_credit_debit = match t.credit_debit {
                    Some(cd) => parse_credit_debit(Some(&cd), &format!("{TX_PATH}/CdtDbtInd"))?,
                    None => credit_debit,
                };
                out.push(BookedTx {
                    end_to_end_id: t.end_to_end_id,
                    amount_minor: tx_amount,
                    currency: tx_currency,
                    credit_debit: tx_credit_debit,
                    status: status.clone(),
                    booking_date: e.booking_date.clone(),
                });
            }
        }
        Ok(Camt054Report {
            message_id,
            entries: out,
        })
    }
}

impl AmountBuilder {
    fn parse(&self, path: &str) -> Result<(String, u64), BankError> {
        let value = self.value.as_deref().ok_or_else(|| missing(path))?;
        let currency = self
            .currency
            .as_deref()
            .ok_or_else(|| missing(&format!("{path}/@Ccy")))?;
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(BankError::InvalidValue {
                path: format!("{path}/@Ccy"),
                reason: "is not an ISO 4217 currency code".into(),
            });
        }
        Ok((
            currency.to_owned(),
            parse_amount_minor(path, value, currency)?,
        ))
    }
}

fn parse_credit_debit(code: Option<&str>, path: &str) -> Result<CreditDebit, BankError> {
    match code {
        Some("DBIT") => Ok(CreditDebit::Debit),
        Some("CRDT") => Ok(CreditDebit::Credit),
        Some(_) => Err(BankError::InvalidValue {
            path: path.to_owned(),
            reason: "must be CRDT or DBIT".into(),
        }),
        None => Err(missing(path)),
    }
}

/// Number of minor-unit digits of a currency (ISO 4217); 2 unless listed.
fn minor_unit_digits(currency: &str) -> u32 {
    const ZERO: [&str; 16] = [
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV",
        "XAF", "XOF", "XPF",
    ];
    const THREE: [&str; 7] = ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
    if ZERO.contains(&currency) {
        0
    } else if THREE.contains(&currency) {
        3
    } else {
        2
    }
}

/// Parses a non-negative `xs:decimal` amount into minor units of `currency` (`0.01` CNY -> 1).
/// Fraction digits beyond the currency's minor unit must be zeros; overflow is an error.
fn parse_amount_minor(path: &str, text: &str, currency: &str) -> Result<u64, BankError> {
    let bad = |reason: &str| BankError::InvalidValue {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let digits = text.strip_prefix('+').unwrap_or(text);
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if int_part.is_empty() && frac_part.is_empty()
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad("is not a non-negative decimal amount"));
    }
    let scale = minor_unit_digits(currency) as usize;
    let (kept, dropped) = frac_part.split_at(frac_part.len().min(scale));
    if dropped.bytes().any(|b| b != b'0') {
        return Err(bad(
            "has more fraction digits than the currency's minor unit",
        ));
    }
    let overflow = || bad("is too large");
    let mut value: u64 = 0;
    let padded = kept
        .bytes()
        .chain(std::iter::repeat_n(b'0', scale - kept.len()));
    for b in int_part.bytes().chain(padded) {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or_else(overflow)?;
    }
    Ok(value)
}

impl Handler for Camt054Builder {
    fn start(&mut self, path: &[&str], attrs: &[(String, String)]) -> Result<bool, BankError> {
        let ccy = || {
            attrs
                .iter()
                .find(|(k, _)| k == "Ccy")
                .map(|(_, v)| trim_xml(v).to_owned())
        };
        match path {
            [CAMT_ROOT, "Ntfctn", "Ntry"] => self.entries.push(EntryBuilder::default()),
            [CAMT_ROOT, "Ntfctn", "Ntry", "NtryDtls", "TxDtls"] => {
                self.entry()?.txs.push(CamtTxBuilder::default());
            }
            [CAMT_ROOT, "Ntfctn", "Ntry", "Amt"] => self.entry()?.amount.currency = ccy(),
            [CAMT_ROOT, "Ntfctn", "Ntry", "NtryDtls", "TxDtls", "Amt"] => {
                self.tx()?.amount.currency = ccy();
            }
            _ => {}
        }
        Ok(camt_field(path).is_some())
    }

    fn end(&mut self, path: &[&str], text: Option<String>) -> Result<(), BankError> {
        let Some(field) = camt_field(path) else {
            return Ok(());
        };
        let value = non_empty(text, path)?;
        match field {
            CamtField::MsgId => set_once(&mut self.message_id, value, path),
            CamtField::EntryAmount => set_once(&mut self.entry()?.amount.value, value, path),
            CamtField::EntryCreditDebit => set_once(&mut self.entry()?.credit_debit, value, path),
            CamtField::EntryStatus => set_once(&mut self.entry()?.status, value, path),
            CamtField::BookingDate => set_once(&mut self.entry()?.booking_date, value, path),
            CamtField::TxEndToEndId => set_once(&mut self.tx()?.end_to_end_id, value, path),
            CamtField::TxAmount => set_once(&mut self.tx()?.amount.value, value, path),
            CamtField::TxCreditDebit => set_once(&mut self.tx()?.credit_debit, value, path),
        }
    }
}

/// Parses a `camt.054.001.08` notification (see the module invariants for hostile input).
pub fn parse_camt054(xml: &[u8]) -> Result<Camt054Report, BankError> {
    let mut builder = Camt054Builder::default();
    read_document(xml, CAMT054_NAMESPACE, &mut builder)?;
    builder.finish()
}

#[cfg(test)]
mod tests;
