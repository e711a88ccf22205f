//! The e-mail that carries an unlock authorisation code: its Chinese texts, which
//! `station.toml` may replace (`[delivery.email.templates]`), with only the placeholders
//! `{code}`, `{expires_at}`, `{order_no}` and `{serial}` (the key's serial, masked) — the
//! template syntax of the notices ([`super::notification`]). The body carries `{code}` exactly
//! once; the subject never.

use super::notification::{Piece, Scan, scan};
use serde::{Deserialize, Serialize};

/// The placeholders an unlock e-mail may use.
pub const PLACEHOLDERS: [&str; 4] = ["code", "expires_at", "order_no", "serial"];

/// A template that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnlockTemplateError {
    /// A placeholder an unlock e-mail does not have.
    #[error(
        "unlock e-mail {field}: unknown placeholder {{{name}}} (allowed: {{code}}, {{expires_at}}, \
         {{order_no}}, {{serial}})"
    )]
    UnknownPlaceholder {
        /// `unlock_subject` or `unlock_body`.
        field: &'static str,
        /// The placeholder.
        name: String,
    },
    /// A brace that does not open or close a placeholder.
    #[error("unlock e-mail {field}: unmatched brace at byte offset {offset}")]
    StrayBrace {
        /// `unlock_subject` or `unlock_body`.
        field: &'static str,
        /// Where.
        offset: usize,
    },
    /// Empty.
    #[error("unlock e-mail {field}: is empty")]
    Empty {
        /// `unlock_subject` or `unlock_body`.
        field: &'static str,
    },
    /// The body must carry the code exactly once, the subject never.
    #[error("unlock e-mail {field}: {{code}} must appear {expected}")]
    Code {
        /// `unlock_subject` or `unlock_body`.
        field: &'static str,
        /// What is required.
        expected: &'static str,
    },
}

/// What fills an unlock e-mail.
#[derive(Debug)]
pub struct UnlockMail<'a> {
    /// The authorisation code (one line).
    pub code: &'a str,
    /// Its expiry (UTC).
    pub expires_at: &'a str,
    /// The order.
    pub order_no: &'a str,
    /// The key's serial, unmasked (masked when filled in).
    pub token_serial: &'a str,
}

/// The unlock e-mail's texts (Chinese defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlockMailTemplates {
    /// Subject (`{order_no}`, `{serial}`, `{expires_at}`).
    #[serde(default = "default_subject")]
    pub unlock_subject: String,
    /// Body (`{code}` exactly once, `{order_no}`, `{serial}`, `{expires_at}`).
    #[serde(default = "default_body")]
    pub unlock_body: String,
}

impl Default for UnlockMailTemplates {
    fn default() -> Self {
        UnlockMailTemplates {
            unlock_subject: default_subject(),
            unlock_body: default_body(),
        }
    }
}

fn default_subject() -> String {
    "【解锁授权码】订单 {order_no} 的 USB Key（序列号 {serial}）".into()
}

fn default_body() -> String {
    "您好：\n\n订单 {order_no} 的 USB Key（序列号 {serial}）的解锁授权码如下。请将整行粘贴到仍在等待的 \
     keystation-unlock 程序中，然后按提示两次输入新的 PIN：\n\n{code}\n\n有效期至 {expires_at}（UTC）。\
     此授权码只能由发起本次申请的那一次 keystation-unlock 使用；仅凭本邮件无法解锁 Key。\
     如非本人申请，请联系我们的服务台。\n"
        .into()
}

/// A key's serial as an e-mail shows it: all but its last four characters hidden.
pub fn mask_serial(serial: &str) -> String {
    let chars: Vec<char> = serial.chars().collect();
    let keep = chars.len().saturating_sub(4);
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < keep { '*' } else { *c })
        .collect()
}

fn pieces<'t>(
    field: &'static str,
    template: &'t str,
) -> Result<Vec<Piece<'t>>, UnlockTemplateError> {
    let pieces = scan(template, |name| PLACEHOLDERS.contains(&name)).map_err(|e| match e {
        Scan::Empty => UnlockTemplateError::Empty { field },
        Scan::StrayBrace(offset) => UnlockTemplateError::StrayBrace { field, offset },
        Scan::Unknown(name) => UnlockTemplateError::UnknownPlaceholder { field, name },
    })?;
    let codes = pieces
        .iter()
        .filter(|p| matches!(p, Piece::Placeholder("code")))
        .count();
    let (ok, expected) = match field {
        "unlock_body" => (codes == 1, "exactly once in the body"),
        _ => (codes == 0, "in the body only, not in the subject"),
    };
    if !ok {
        return Err(UnlockTemplateError::Code { field, expected });
    }
    Ok(pieces)
}

impl UnlockMailTemplates {
    /// Checks both texts (at configuration load).
    pub fn check(&self) -> Result<(), UnlockTemplateError> {
        pieces("unlock_subject", &self.unlock_subject)?;
        pieces("unlock_body", &self.unlock_body)?;
        Ok(())
    }

    /// The subject and the body for `mail`.
    pub fn render(&self, mail: &UnlockMail<'_>) -> Result<(String, String), UnlockTemplateError> {
        let serial = mask_serial(mail.token_serial);
        let fill = |field, template| -> Result<String, UnlockTemplateError> {
            let mut out = String::new();
            for p in pieces(field, template)? {
                out.push_str(match p {
                    Piece::Text(t) => t,
                    Piece::Placeholder("code") => mail.code,
                    Piece::Placeholder("expires_at") => mail.expires_at,
                    Piece::Placeholder("order_no") => mail.order_no,
                    Piece::Placeholder(_) => &serial,
                });
            }
            Ok(out)
        };
        Ok((
            fill("unlock_subject", &self.unlock_subject)?,
            fill("unlock_body", &self.unlock_body)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn mail() -> UnlockMail<'static> {
        UnlockMail {
            code: "KSUA1-ABC",
            expires_at: "2026-12-07T20:00:00Z",
            order_no: "KS-1",
            token_serial: "0123456789ab",
        }
    }

    #[test]
    fn the_default_carries_the_code_on_its_own_line_and_a_masked_serial() {
        let t = UnlockMailTemplates::default();
        t.check().unwrap();
        let (subject, body) = t.render(&mail()).unwrap();
        assert!(body.lines().any(|l| l == "KSUA1-ABC"), "{body}");
        assert!(
            subject.contains("KS-1") && subject.contains("********89ab"),
            "{subject}"
        );
        assert!(!subject.contains("0123456789ab") && !body.contains("0123456789ab"));
        assert!(body.contains("2026-12-07T20:00:00Z"), "{body}");
        assert!(!subject.contains("KSUA1"), "{subject}");
    }

    #[test]
    fn an_unknown_placeholder_is_refused() {
        for name in ["pin", "so_pin", "handler", "company"] {
            let t = UnlockMailTemplates {
                unlock_body: format!("{{code}} {{{name}}}"),
                ..UnlockMailTemplates::default()
            };
            let e = t.check().unwrap_err();
            assert_eq!(
                e,
                UnlockTemplateError::UnknownPlaceholder {
                    field: "unlock_body",
                    name: name.into()
                }
            );
            assert!(e.to_string().contains(&format!("{{{name}}}")), "{e}");
        }
    }

    #[test]
    fn the_code_is_in_the_body_once_and_never_in_the_subject() {
        let no_code = UnlockMailTemplates {
            unlock_body: "订单 {order_no}".into(),
            ..UnlockMailTemplates::default()
        };
        assert!(matches!(
            no_code.check(),
            Err(UnlockTemplateError::Code {
                field: "unlock_body",
                ..
            })
        ));
        let twice = UnlockMailTemplates {
            unlock_body: "{code}\n{code}".into(),
            ..UnlockMailTemplates::default()
        };
        assert!(twice.check().is_err());
        let in_subject = UnlockMailTemplates {
            unlock_subject: "{code}".into(),
            ..UnlockMailTemplates::default()
        };
        assert!(matches!(
            in_subject.check(),
            Err(UnlockTemplateError::Code {
                field: "unlock_subject",
                ..
            })
        ));
        let stray = UnlockMailTemplates {
            unlock_body: "{code} }".into(),
            ..UnlockMailTemplates::default()
        };
        assert!(matches!(
            stray.check(),
            Err(UnlockTemplateError::StrayBrace { .. })
        ));
    }

    #[test]
    fn a_short_serial_is_hidden_but_its_last_four() {
        assert_eq!(mask_serial("abcd"), "abcd");
        assert_eq!(mask_serial("abcdef"), "**cdef");
    }
}
