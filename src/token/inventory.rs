//! Everything on a token, read back: each object a session sees, with the attributes an audit of
//! the token needs (class, label, id, application, value, and for keys their usages and
//! protection). Judging what is found is the caller's business (`keystation check`).

pub use super::model::{KeyKind, ObjectKind, TokenObject};

use super::TokenError;
use super::backend::ObjectQuery;
use super::session::TokenSession;

impl TokenSession {
    /// Every object this session sees (public ones without a login, private ones too after a
    /// user login), in the order label, class.
    pub fn inventory(&self) -> Result<Vec<TokenObject>, TokenError> {
        let handles = self.backend.find(&ObjectQuery::default())?;
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            out.push(self.backend.object(h)?);
        }
        out.sort_by(|a, b| (&a.label, a.kind.to_string()).cmp(&(&b.label, b.kind.to_string())));
        Ok(out)
    }
}
