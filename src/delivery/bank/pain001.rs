//! Writer of the ISO 20022 `pain.001.001.10` customer credit transfer initiation that carries
//! PINs to companies in the memo of 0.01 CNY transfers.
//!
//! One [`PaymentBatch`] becomes one document with one payment information block (`PmtInf`): the
//! station's account is the debtor, each [`CreditTransfer`] credits a company's corporate account.
//!
//! Invariants:
//! - every input is checked against the schema facets before anything is written, and every
//!   accepted batch yields a document valid against `pain.001.001.10.xsd` (tests run xmllint);
//! - `NbOfTxs` and `CtrlSum` (group and payment level) are computed from the transfers;
//! - end-to-end and instruction ids are unique within a batch (a PIN is never sent twice in one
//!   file);
//! - accounts are written as `Othr/Id` (Chinese account numbers are not IBANs); the currency is
//!   always CNY.
//!
//! Choices the schema leaves open:
//! - `ChrgBr` is `DEBT`: the station pays all charges, so the company receives the full 0.01 CNY
//!   (`SLEV` only means something under a service level such as SEPA, which does not apply to
//!   domestic CNY transfers; `SHAR` could eat the cent).
//! - `BtchBookg` is `false`: each transfer is booked on its own, so the bank's `camt.054` reports
//!   one entry per transfer with its `EndToEndId`, which is how deliveries are confirmed.
//! - The schema accepts an empty `FinInstnId` (all its children are optional) but a bank cannot
//!   route on it, so an [`Agent`] needs a BIC or a name (Chinese banks are often named only).
//!
//! # Security notes
//! The memos contain PINs. The document is written into a buffer that is zeroized whenever it
//! grows and when the returned [`Zeroizing`] string is dropped; the escaped copy of a memo (when
//! it has `&`, `<` or `>`) is zeroizing too. `Debug` of [`CreditTransfer`] redacts the memo, and
//! errors name fields, never values.

use std::fmt;
use std::io;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesStart, BytesText, Event};
use zeroize::{Zeroize, Zeroizing};

use super::xml_writer::{end, leaf, start};
use super::{
    BankError, PAIN001_NAMESPACE, check_account, check_bic, check_reference, check_text,
    format_date, format_date_time, invalid,
};

/// Largest amount (exclusive) in fen: the schema's `totalDigits` is 18 for amounts and sums.
const AMOUNT_LIMIT_FEN: u64 = 1_000_000_000_000_000_000;

/// A financial institution as `FinInstnId`: a BIC, a name (bank and branch), or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// BIC (`BICFI`), e.g. `ICBKCNBJ`; many Chinese branches have none.
    pub bic: Option<String>,
    /// Bank name plus branch (`Nm`, at most 140 characters), e.g. `中国工商银行北京朝阳支行`.
    pub name: Option<String>,
}

/// One 0.01 CNY transfer carrying a PIN to a company's corporate account.
#[derive(Clone)]
pub struct CreditTransfer {
    /// `InstrId`: the station's reference for the instruction (reference charset, <= 35).
    pub instruction_id: String,
    /// `EndToEndId`: see [`super::end_to_end_id`] (reference charset, <= 35).
    pub end_to_end_id: String,
    /// Amount in fen (CNY minor units); keystation sends 1.
    pub amount_fen: u64,
    /// The company's name as registered with its bank (`Cdtr/Nm`, <= 140 characters).
    pub creditor_name: String,
    /// The company's account number (`CdtrAcct/Id/Othr/Id`, <= 34).
    pub creditor_account: String,
    /// The company's bank: bank name + branch as name.
    pub creditor_agent: Agent,
    /// The memo (`RmtInf/Ustrd`, <= 140 characters); it contains the PIN.
    pub memo: Zeroizing<String>,
}

impl fmt::Debug for CreditTransfer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreditTransfer")
            .field("instruction_id", &self.instruction_id)
            .field("end_to_end_id", &self.end_to_end_id)
            .field("amount_fen", &self.amount_fen)
            .field("creditor_name", &self.creditor_name)
            .field("creditor_account", &self.creditor_account)
            .field("creditor_agent", &self.creditor_agent)
            .field("memo", &"<redacted: contains a PIN>")
            .finish()
    }
}

/// One `pain.001` file: the station's account pays every transfer.
#[derive(Debug, Clone)]
pub struct PaymentBatch {
    /// `GrpHdr/MsgId`, unique per file (reference charset, <= 35).
    pub message_id: String,
    /// `GrpHdr/CreDtTm` (written to the second, with its UTC offset).
    pub created_at: time::OffsetDateTime,
    /// `GrpHdr/InitgPty/Nm`: usually the CA's name (<= 140 characters).
    pub initiating_party: String,
    /// `Dbtr/Nm`: the account holder paying the cents (<= 140 characters).
    pub debtor_name: String,
    /// `DbtrAcct/Id/Othr/Id` (<= 34).
    pub debtor_account: String,
    /// `DbtrAgt`: the station's bank.
    pub debtor_agent: Agent,
    /// `ReqdExctnDt/Dt`.
    pub requested_execution_date: time::Date,
    /// `PmtInfId` (reference charset, <= 35).
    pub payment_info_id: String,
    /// The transfers, at least one.
    pub transfers: Vec<CreditTransfer>,
}

/// Writes `batch` as a `pain.001.001.10` document (UTF-8, indented), after checking every field
/// against the schema facets. The result contains the memos, hence PINs: it is zeroizing.
pub fn write_pain001(batch: &PaymentBatch) -> Result<Zeroizing<String>, BankError> {
    let (count, sum_fen) = validate(batch)?;
    let created_at = format_date_time("created_at", batch.created_at)?;
    let execution_date = format_date("requested_execution_date", batch.requested_execution_date)?;
    let count = count.to_string();
    let sum = format_amount(sum_fen);

    let capacity = 2048 + batch.transfers.len() * 1536;
    let mut w = Writer::new_with_indent(SecretSink::with_capacity(capacity), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.write_event(Event::Start(
        BytesStart::new("Document").with_attributes([("xmlns", PAIN001_NAMESPACE)]),
    ))?;
    start(&mut w, "CstmrCdtTrfInitn")?;

    start(&mut w, "GrpHdr")?;
    leaf(&mut w, "MsgId", &batch.message_id)?;
    leaf(&mut w, "CreDtTm", &created_at)?;
    leaf(&mut w, "NbOfTxs", &count)?;
    leaf(&mut w, "CtrlSum", &sum)?;
    start(&mut w, "InitgPty")?;
    leaf(&mut w, "Nm", &batch.initiating_party)?;
    end(&mut w, "InitgPty")?;
    end(&mut w, "GrpHdr")?;

    start(&mut w, "PmtInf")?;
    leaf(&mut w, "PmtInfId", &batch.payment_info_id)?;
    leaf(&mut w, "PmtMtd", "TRF")?;
    leaf(&mut w, "BtchBookg", "false")?;
    leaf(&mut w, "NbOfTxs", &count)?;
    leaf(&mut w, "CtrlSum", &sum)?;
    start(&mut w, "ReqdExctnDt")?;
    leaf(&mut w, "Dt", &execution_date)?;
    end(&mut w, "ReqdExctnDt")?;
    start(&mut w, "Dbtr")?;
    leaf(&mut w, "Nm", &batch.debtor_name)?;
    end(&mut w, "Dbtr")?;
    account(&mut w, "DbtrAcct", &batch.debtor_account)?;
    agent(&mut w, "DbtrAgt", &batch.debtor_agent)?;
    leaf(&mut w, "ChrgBr", "DEBT")?;
    for t in &batch.transfers {
        start(&mut w, "CdtTrfTxInf")?;
        start(&mut w, "PmtId")?;
        leaf(&mut w, "InstrId", &t.instruction_id)?;
        leaf(&mut w, "EndToEndId", &t.end_to_end_id)?;
        end(&mut w, "PmtId")?;
        start(&mut w, "Amt")?;
        let amount = format_amount(t.amount_fen);
        w.create_element("InstdAmt")
            .with_attribute(("Ccy", "CNY"))
            .write_text_content(BytesText::new(&amount))?;
        end(&mut w, "Amt")?;
        agent(&mut w, "CdtrAgt", &t.creditor_agent)?;
        start(&mut w, "Cdtr")?;
        leaf(&mut w, "Nm", &t.creditor_name)?;
        end(&mut w, "Cdtr")?;
        account(&mut w, "CdtrAcct", &t.creditor_account)?;
        start(&mut w, "RmtInf")?;
        let memo = escape_secret_text(&t.memo);
        w.create_element("Ustrd")
            .write_text_content(BytesText::from_escaped(memo.as_str()))?;
        end(&mut w, "RmtInf")?;
        end(&mut w, "CdtTrfTxInf")?;
    }
    end(&mut w, "PmtInf")?;
    end(&mut w, "CstmrCdtTrfInitn")?;
    end(&mut w, "Document")?;
    w.get_mut().write_bytes(b"\n");
    w.into_inner().into_string()
}

/// Checks the whole batch; returns the number of transfers and the control sum in fen.
fn validate(batch: &PaymentBatch) -> Result<(usize, u64), BankError> {
    check_reference("message_id", &batch.message_id)?;
    check_text("initiating_party", &batch.initiating_party, 140)?;
    check_text("debtor_name", &batch.debtor_name, 140)?;
    check_account("debtor_account", &batch.debtor_account)?;
    check_agent("debtor_agent", &batch.debtor_agent)?;
    check_reference("payment_info_id", &batch.payment_info_id)?;
    if batch.transfers.is_empty() {
        return Err(invalid("transfers", "a batch needs at least one transfer"));
    }
    let mut sum: u64 = 0;
    let mut end_to_end_ids = std::collections::HashSet::new();
    let mut instruction_ids = std::collections::HashSet::new();
    for (i, t) in batch.transfers.iter().enumerate() {
        let field = |name: &str| format!("transfers[{i}].{name}");
        check_reference(&field("instruction_id"), &t.instruction_id)?;
        check_reference(&field("end_to_end_id"), &t.end_to_end_id)?;
        if !instruction_ids.insert(t.instruction_id.as_str()) {
            return Err(invalid(
                &field("instruction_id"),
                "is used by an earlier transfer of the batch",
            ));
        }
        if !end_to_end_ids.insert(t.end_to_end_id.as_str()) {
            return Err(invalid(
                &field("end_to_end_id"),
                "is used by an earlier transfer of the batch (one PIN must never be sent twice)",
            ));
        }
        if t.amount_fen == 0 || t.amount_fen >= AMOUNT_LIMIT_FEN {
            return Err(invalid(
                &field("amount_fen"),
                "must be at least 1 fen and have at most 18 digits",
            ));
        }
        sum = sum
            .checked_add(t.amount_fen)
            .filter(|s| *s < AMOUNT_LIMIT_FEN)
            .ok_or_else(|| invalid("transfers", "control sum exceeds 18 digits"))?;
        check_text(&field("creditor_name"), &t.creditor_name, 140)?;
        check_account(&field("creditor_account"), &t.creditor_account)?;
        check_agent(&field("creditor_agent"), &t.creditor_agent)?;
        check_text(&field("memo"), &t.memo, 140)?;
    }
    Ok((batch.transfers.len(), sum))
}

fn check_agent(field: &str, agent: &Agent) -> Result<(), BankError> {
    if agent.bic.is_none() && agent.name.is_none() {
        return Err(invalid(
            field,
            "needs a BIC or a name (bank and branch): the bank cannot route on an empty FinInstnId",
        ));
    }
    if let Some(bic) = &agent.bic {
        check_bic(&format!("{field}.bic"), bic)?;
    }
    if let Some(name) = &agent.name {
        check_text(&format!("{field}.name"), name, 140)?;
    }
    Ok(())
}

/// `1` fen -> `0.01`: two fraction digits, as banks expect for CNY.
fn format_amount(fen: u64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

/// Escapes `&`, `<`, `>` of a secret text into a zeroizing buffer sized exactly beforehand, so
/// that no reallocation leaves a copy of the secret behind.
fn escape_secret_text(text: &str) -> Zeroizing<String> {
    let len = text
        .chars()
        .map(|c| match c {
            '&' => 5,
            '<' | '>' => 4,
            c => c.len_utf8(),
        })
        .sum();
    let mut out = Zeroizing::new(String::with_capacity(len));
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn account(w: &mut Writer<SecretSink>, name: &str, id: &str) -> io::Result<()> {
    start(w, name)?;
    start(w, "Id")?;
    start(w, "Othr")?;
    leaf(w, "Id", id)?;
    end(w, "Othr")?;
    end(w, "Id")?;
    end(w, name)
}

fn agent(w: &mut Writer<SecretSink>, name: &str, agent: &Agent) -> io::Result<()> {
    start(w, name)?;
    start(w, "FinInstnId")?;
    // Schema order inside FinInstnId: BICFI, ClrSysMmbId, LEI, Nm, ...
    if let Some(bic) = &agent.bic {
        leaf(w, "BICFI", bic)?;
    }
    if let Some(bank) = &agent.name {
        leaf(w, "Nm", bank)?;
    }
    end(w, "FinInstnId")?;
    end(w, name)
}

/// An `io::Write` sink whose buffer is zeroized when it grows and when it is dropped.
struct SecretSink {
    buf: Zeroizing<Vec<u8>>,
}

impl SecretSink {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: Zeroizing::new(Vec::with_capacity(capacity)),
        }
    }

    fn write_bytes(&mut self, data: &[u8]) {
        let needed = self.buf.len().saturating_add(data.len());
        if needed > self.buf.capacity() {
            // Grow by hand: `Vec` would free the old allocation without wiping it.
            let mut bigger =
                Zeroizing::new(Vec::with_capacity(needed.max(self.buf.capacity() * 2)));
            bigger.extend_from_slice(&self.buf);
            self.buf = bigger; // the old buffer is zeroized on drop
        }
        self.buf.extend_from_slice(data);
    }

    fn into_string(mut self) -> Result<Zeroizing<String>, BankError> {
        let bytes = std::mem::take(&mut *self.buf);
        match String::from_utf8(bytes) {
            Ok(s) => Ok(Zeroizing::new(s)),
            Err(e) => {
                // Unreachable in practice (only UTF-8 is ever written); wipe before failing.
                let mut bytes = e.into_bytes();
                bytes.zeroize();
                Err(BankError::Write(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "document is not UTF-8",
                )))
            }
        }
    }
}

impl io::Write for SecretSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_bytes(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::test_support::xmllint;
    use super::*;
    use time::macros::{date, datetime};

    const SCHEMA: &str = "pain.001.001.10.xsd";

    fn transfer(i: usize, name: &str, memo: &str) -> CreditTransfer {
        CreditTransfer {
            instruction_id: format!("KS-I-{i:04}"),
            end_to_end_id: format!("KSD-{i:06}"),
            amount_fen: 1,
            creditor_name: name.to_owned(),
            creditor_account: format!("020000100901234567{i}"),
            creditor_agent: Agent {
                bic: None,
                name: Some("中国工商银行北京朝阳支行".to_owned()),
            },
            memo: Zeroizing::new(memo.to_owned()),
        }
    }

    fn batch(transfers: Vec<CreditTransfer>) -> PaymentBatch {
        PaymentBatch {
            message_id: "KS-MSG-20240305-0001".to_owned(),
            created_at: datetime!(2024-03-05 09:30:00 +08:00),
            initiating_party: "北京数字证书认证中心".to_owned(),
            debtor_name: "北京数字证书认证中心有限公司".to_owned(),
            debtor_account: "0200004509089131550".to_owned(),
            debtor_agent: Agent {
                bic: Some("ICBKCNBJ".to_owned()),
                name: Some("中国工商银行北京分行营业部".to_owned()),
            },
            requested_execution_date: date!(2024 - 03 - 05),
            payment_info_id: "KS-PMT-20240305-0001".to_owned(),
            transfers,
        }
    }

    fn error_of(b: &PaymentBatch) -> String {
        write_pain001(b)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn single_transfer_is_schema_valid_and_carries_the_memo() {
        let b = batch(vec![transfer(
            1,
            "北京某某科技有限公司",
            "PIN Ab3k9Qz7 REF A1234 CHANGE AT 1ST USE",
        )]);
        let xml = write_pain001(&b).unwrap();
        xmllint(xml.as_bytes(), SCHEMA).unwrap();
        assert!(xml.contains("xmlns=\"urn:iso:std:iso:20022:tech:xsd:pain.001.001.10\""));
        assert!(xml.contains("<CreDtTm>2024-03-05T09:30:00+08:00</CreDtTm>"));
        assert_eq!(xml.matches("<NbOfTxs>1</NbOfTxs>").count(), 2);
        assert_eq!(xml.matches("<CtrlSum>0.01</CtrlSum>").count(), 2);
        assert!(xml.contains("<InstdAmt Ccy=\"CNY\">0.01</InstdAmt>"));
        assert!(xml.contains("<PmtMtd>TRF</PmtMtd>"));
        assert!(xml.contains("<ChrgBr>DEBT</ChrgBr>"));
        let compact: String = xml.lines().map(str::trim).collect();
        assert!(
            compact.contains(
                "<CdtrAcct><Id><Othr><Id>0200001009012345671</Id></Othr></Id></CdtrAcct>"
            )
        );
        assert!(compact.contains(
            "<DbtrAgt><FinInstnId><BICFI>ICBKCNBJ</BICFI><Nm>中国工商银行北京分行营业部</Nm></FinInstnId></DbtrAgt>"
        ));
        assert!(xml.contains("<Ustrd>PIN Ab3k9Qz7 REF A1234 CHANGE AT 1ST USE</Ustrd>"));
        assert!(!xml.contains("IBAN"));
    }

    #[test]
    fn batch_with_chinese_names_and_markup_is_schema_valid() {
        let mut transfers = vec![
            transfer(
                1,
                "北京某某科技有限公司",
                "PIN Ab3k9Qz7 REF A0001 CHANGE AT 1ST USE",
            ),
            transfer(
                2,
                "上海某某信息技术股份有限公司",
                "证书密码Hx4mP9tR首次使用请修改",
            ),
            transfer(3, "深圳某某 & <分公司> \"测试\"", "PIN <&> 'x' Zq8Wn2Kd"),
        ];
        transfers[1].amount_fen = 123_456;
        transfers[2].creditor_agent = Agent {
            bic: Some("PCBCCNBJSZX".to_owned()),
            name: None,
        };
        let b = batch(transfers);
        let xml = write_pain001(&b).unwrap();
        xmllint(xml.as_bytes(), SCHEMA).unwrap();
        assert_eq!(xml.matches("<NbOfTxs>3</NbOfTxs>").count(), 2);
        assert_eq!(xml.matches("<CtrlSum>1234.58</CtrlSum>").count(), 2);
        assert!(xml.contains("<InstdAmt Ccy=\"CNY\">1234.56</InstdAmt>"));
        assert!(xml.contains("<Nm>上海某某信息技术股份有限公司</Nm>"));
        assert!(xml.contains("&amp; &lt;分公司&gt;"));
        assert!(xml.contains("<Ustrd>PIN &lt;&amp;&gt; 'x' Zq8Wn2Kd</Ustrd>"));
        assert!(xml.contains("<BICFI>PCBCCNBJSZX</BICFI>"));
        assert_eq!(xml.matches("<CdtTrfTxInf>").count(), 3);
    }

    #[test]
    fn xmllint_really_rejects_invalid_documents() {
        // Guards the other tests: a broken document must fail the schema check.
        let b = batch(vec![transfer(1, "北京某某科技有限公司", "PIN Ab3k9Qz7")]);
        let xml = write_pain001(&b).unwrap();
        let broken = xml.replace("<PmtMtd>TRF</PmtMtd>", "<PmtMtd>XXX</PmtMtd>");
        assert!(xmllint(broken.as_bytes(), SCHEMA).is_err());
        let too_long = xml.replace("KS-MSG-20240305-0001", &"M".repeat(36));
        assert!(xmllint(too_long.as_bytes(), SCHEMA).is_err());
    }

    #[test]
    fn field_length_violations_name_the_field() {
        let ok = || {
            batch(vec![
                transfer(0, "甲公司", "PIN Ab3k9Qz7"),
                transfer(1, "乙公司", "PIN Cd4m8Rt6"),
            ])
        };

        let mut b = ok();
        b.message_id = "M".repeat(36);
        assert!(error_of(&b).contains("`message_id`"), "{}", error_of(&b));

        let mut b = ok();
        b.transfers[1].creditor_name = "公".repeat(141);
        let e = error_of(&b);
        assert!(
            e.contains("`transfers[1].creditor_name`") && e.contains("141"),
            "{e}"
        );
        b.transfers[1].creditor_name = "公".repeat(140);
        xmllint(write_pain001(&b).unwrap().as_bytes(), SCHEMA).unwrap();

        let mut b = ok();
        b.transfers[0].end_to_end_id = "E".repeat(36);
        assert!(error_of(&b).contains("`transfers[0].end_to_end_id`"));

        let mut b = ok();
        b.transfers[1].creditor_account = "1".repeat(35);
        assert!(error_of(&b).contains("`transfers[1].creditor_account`"));

        let mut b = ok();
        b.debtor_agent.name = Some("行".repeat(141));
        assert!(error_of(&b).contains("`debtor_agent.name`"));

        let mut b = ok();
        b.payment_info_id = String::new();
        assert!(error_of(&b).contains("`payment_info_id`"));
    }

    #[test]
    fn memo_errors_never_contain_the_pin() {
        let mut b = batch(vec![transfer(0, "甲公司", "")]);
        b.transfers[0].memo = Zeroizing::new(format!("PIN Ab3k9Qz7 {}", "X".repeat(130)));
        let e = error_of(&b);
        assert!(e.contains("`transfers[0].memo`"), "{e}");
        assert!(!e.contains("Ab3k9Qz7"), "{e}");
        b.transfers[0].memo = Zeroizing::new("PIN Ab3k9Qz7\u{7}".to_owned());
        let e = error_of(&b);
        assert!(
            e.contains("`transfers[0].memo`") && !e.contains("Ab3k9Qz7"),
            "{e}"
        );
        assert!(!format!("{:?}", b.transfers[0]).contains("Ab3k9Qz7"));
    }

    #[test]
    fn business_rules() {
        let mut b = batch(vec![]);
        assert!(error_of(&b).contains("`transfers`"));

        b.transfers = vec![
            transfer(0, "甲公司", "PIN A"),
            transfer(1, "乙公司", "PIN B"),
        ];
        b.transfers[1].end_to_end_id = b.transfers[0].end_to_end_id.clone();
        assert!(error_of(&b).contains("`transfers[1].end_to_end_id`"));

        b.transfers = vec![transfer(0, "甲公司", "PIN A")];
        b.transfers[0].amount_fen = 0;
        assert!(error_of(&b).contains("`transfers[0].amount_fen`"));
        b.transfers[0].amount_fen = AMOUNT_LIMIT_FEN;
        assert!(error_of(&b).contains("`transfers[0].amount_fen`"));
        b.transfers[0].amount_fen = AMOUNT_LIMIT_FEN - 1;
        xmllint(write_pain001(&b).unwrap().as_bytes(), SCHEMA).unwrap();

        b.transfers = vec![transfer(0, "甲公司", "PIN A")];
        b.transfers[0].creditor_agent = Agent {
            bic: None,
            name: None,
        };
        assert!(error_of(&b).contains("`transfers[0].creditor_agent`"));
        b.transfers[0].creditor_agent.bic = Some("ICBKCN".to_owned());
        assert!(error_of(&b).contains("`transfers[0].creditor_agent.bic`"));

        let mut b = batch(vec![transfer(0, "甲公司", "PIN A")]);
        b.debtor_account = "0200 0045 0908".to_owned();
        assert!(error_of(&b).contains("`debtor_account`"));
    }

    #[test]
    fn sink_grows_without_losing_data() {
        let mut sink = SecretSink::with_capacity(4);
        for chunk in [&b"<a>"[..], b"hello", b"</a>", &[b'x'; 100]] {
            sink.write_bytes(chunk);
        }
        let s = sink.into_string().unwrap();
        assert_eq!(s.len(), 3 + 5 + 4 + 100);
        assert!(s.starts_with("<a>hello</a>x"));
        // Maximum-length Chinese fields exceed the writer's initial capacity estimate, so the
        // sink grows (by hand) while writing a real document.
        let n = 50;
        let transfers = (0..n)
            .map(|i| {
                let mut t = transfer(i, &"公".repeat(140), &"M".repeat(140));
                t.creditor_agent.name = Some("行".repeat(140));
                t
            })
            .collect();
        let xml = write_pain001(&batch(transfers)).unwrap();
        assert!(xml.len() > 2048 + n * 1536, "{}", xml.len());
        xmllint(xml.as_bytes(), SCHEMA).unwrap();
    }
}
