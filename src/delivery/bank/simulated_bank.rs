//! The bank's side of the exchange, as the demo's simulated bank (`keystation demo`) and the
//! tests play it: writes the `pain.002.001.11` status report a bank sends back for a `pain.001`.
//! The station itself never writes a `pain.002`; it only reads them ([`super::pain002`]).
//!
//! Invariant: every report it accepts yields a document valid against the schema (inputs are
//! checked against its facets first, errors name the field), which
//! [`parse_pain002`](super::parse_pain002) reads back into an equal report.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesStart, Event};

use super::pain002::{P2_ROOT, Pain002Report};
use super::xml_writer::{end, leaf, start};
use super::{BankError, PAIN002_NAMESPACE, check_code, check_text, format_date_time, invalid};

/// Writes `report` as a `pain.002.001.11` document created at `created_at`, valid against the
/// schema for every report it accepts. `OrgnlMsgNmId` is `pain.001.001.10`. Transactions are
/// written under the payment block named by their `original_payment_info_id`, so
/// [`parse_pain002`](super::parse_pain002) gives back an equal report when `transactions` are grouped in the order of
/// `payment_infos` (as the parser produces them).
pub fn write_pain002(
    report: &Pain002Report,
    created_at: time::OffsetDateTime,
) -> Result<String, BankError> {
    validate_pain002(report)?;
    let created_at = format_date_time("created_at", created_at)?;
    let mut w = Writer::new_with_indent(Vec::with_capacity(4096), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.write_event(Event::Start(
        BytesStart::new("Document").with_attributes([("xmlns", PAIN002_NAMESPACE)]),
    ))?;
    start(&mut w, P2_ROOT)?;
    start(&mut w, "GrpHdr")?;
    leaf(&mut w, "MsgId", &report.message_id)?;
    leaf(&mut w, "CreDtTm", &created_at)?;
    end(&mut w, "GrpHdr")?;
    start(&mut w, "OrgnlGrpInfAndSts")?;
    leaf(&mut w, "OrgnlMsgId", &report.original_message_id)?;
    leaf(&mut w, "OrgnlMsgNmId", "pain.001.001.10")?;
    if let Some(status) = &report.group_status {
        leaf(&mut w, "GrpSts", status)?;
    }
    reason(
        &mut w,
        report.group_reason_code.as_deref(),
        report.group_reason_text.as_deref(),
    )?;
    end(&mut w, "OrgnlGrpInfAndSts")?;
    for p in &report.payment_infos {
        start(&mut w, "OrgnlPmtInfAndSts")?;
        leaf(&mut w, "OrgnlPmtInfId", &p.original_payment_info_id)?;
        if let Some(status) = &p.status {
            leaf(&mut w, "PmtInfSts", status.as_code())?;
        }
        reason(&mut w, p.reason_code.as_deref(), p.reason_text.as_deref())?;
        for t in report
            .transactions
            .iter()
            .filter(|t| t.original_payment_info_id == p.original_payment_info_id)
        {
            start(&mut w, "TxInfAndSts")?;
            if let Some(id) = &t.original_instruction_id {
                leaf(&mut w, "OrgnlInstrId", id)?;
            }
            if let Some(id) = &t.original_end_to_end_id {
                leaf(&mut w, "OrgnlEndToEndId", id)?;
            }
            leaf(&mut w, "TxSts", t.status.as_code())?;
            reason(&mut w, t.reason_code.as_deref(), t.reason_text.as_deref())?;
            end(&mut w, "TxInfAndSts")?;
        }
        end(&mut w, "OrgnlPmtInfAndSts")?;
    }
    end(&mut w, P2_ROOT)?;
    end(&mut w, "Document")?;
    let mut bytes = w.into_inner();
    bytes.push(b'\n');
    String::from_utf8(bytes)
        .map_err(|e| BankError::Write(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

fn validate_pain002(report: &Pain002Report) -> Result<(), BankError> {
    check_text("message_id", &report.message_id, 35)?;
    check_text("original_message_id", &report.original_message_id, 35)?;
    if let Some(status) = &report.group_status {
        check_code("group_status", status)?;
    }
    check_reason(
        "group_reason",
        report.group_reason_code.as_deref(),
        report.group_reason_text.as_deref(),
    )?;
    let mut ids = std::collections::HashSet::new();
    for (i, p) in report.payment_infos.iter().enumerate() {
        let field = |name: &str| format!("payment_infos[{i}].{name}");
        check_text(
            &field("original_payment_info_id"),
            &p.original_payment_info_id,
            35,
        )?;
        if !ids.insert(p.original_payment_info_id.as_str()) {
            return Err(invalid(
                &field("original_payment_info_id"),
                "is used by an earlier payment block",
            ));
        }
        if let Some(status) = &p.status {
            check_code(&field("status"), status.as_code())?;
        }
        check_reason(
            &field("reason"),
            p.reason_code.as_deref(),
            p.reason_text.as_deref(),
        )?;
    }
    for (i, t) in report.transactions.iter().enumerate() {
        let field = |name: &str| format!("transactions[{i}].{name}");
        if !ids.contains(t.original_payment_info_id.as_str()) {
            return Err(invalid(
                &field("original_payment_info_id"),
                "names no entry of payment_infos",
            ));
        }
        if let Some(id) = &t.original_instruction_id {
            check_text(&field("original_instruction_id"), id, 35)?;
        }
        if let Some(id) = &t.original_end_to_end_id {
            check_text(&field("original_end_to_end_id"), id, 35)?;
        }
        check_code(&field("status"), t.status.as_code())?;
        check_reason(
            &field("reason"),
            t.reason_code.as_deref(),
            t.reason_text.as_deref(),
        )?;
    }
    Ok(())
}

fn check_reason(field: &str, code: Option<&str>, text: Option<&str>) -> Result<(), BankError> {
    if let Some(code) = code {
        // Written as `Cd` when it looks like an external code, else as `Prtry` (Max35Text).
        if !is_external_code(code) {
            check_text(&format!("{field}_code"), code, 35)?;
        }
    }
    if let Some(text) = text {
        check_text(&format!("{field}_text"), text, 105)?;
    }
    Ok(())
}

fn is_external_code(code: &str) -> bool {
    check_code("", code).is_ok()
}

fn reason(w: &mut Writer<Vec<u8>>, code: Option<&str>, text: Option<&str>) -> std::io::Result<()> {
    if code.is_none() && text.is_none() {
        return Ok(());
    }
    start(w, "StsRsnInf")?;
    if let Some(code) = code {
        start(w, "Rsn")?;
        leaf(
            w,
            if is_external_code(code) {
                "Cd"
            } else {
                "Prtry"
            },
            code,
        )?;
        end(w, "Rsn")?;
    }
    if let Some(text) = text {
        leaf(w, "AddtlInf", text)?;
    }
    end(w, "StsRsnInf")
}

#[cfg(test)]
mod tests;
