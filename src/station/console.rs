//! What the operators' console (`keystation serve --console-listen`, see `crate::web::console`)
//! asks of the station beyond the commands the CLI shares with it and the login
//! ([`super::login`]): the queue with its search, an order's stored documents, and the random
//! values of sessions.
//!
//! Once logged in, the console acts by the account's name on a station without a credential
//! file ([`Station::for_authenticated_operator`]): each command still goes through
//! [`Station::operator_actor`], which checks the account is registered, enabled and holds the
//! role.

use super::Station;
use crate::domain::console::QueueSearch;
use crate::domain::{OrderNo, OrderState};
use crate::random::RandomError;
use crate::store::{AttachmentMeta, OrderSummary, StoreError};
use zeroize::Zeroizing;

impl Station {
    /// The same station for an operator a web front authenticated (a console login, an API
    /// token): the commands it calls name the account, and [`Station::operator_actor`]
    /// resolves that name (without the serving process's own credential file).
    pub fn for_authenticated_operator(&self) -> Station {
        Station {
            identity: super::operators::Identity::Front,
            ..self.clone()
        }
    }

    /// The console's queue: orders in `state` (all: `None`) that `search` finds, oldest first.
    pub async fn order_queue(
        &self,
        state: Option<OrderState>,
        search: &QueueSearch,
    ) -> Result<Vec<OrderSummary>, StoreError> {
        let mut orders = self.store.list_orders(state).await?;
        orders.retain(|o| search.matches(&o.order_no, &o.company_name, &o.uscc));
        Ok(orders)
    }

    /// A stored document or seal picture of `order_no` (`role` `document` or `seal`, `kind` its
    /// kind), checked against its SHA-256; `None` when the order has no such attachment.
    pub async fn order_attachment(
        &self,
        order_no: &OrderNo,
        role: &str,
        kind: &str,
    ) -> Result<Option<(AttachmentMeta, Vec<u8>)>, StoreError> {
        self.store.attachment_content(order_no, role, kind).await
    }

    /// 32 random bytes from the station's source, hex (a console session id, a CSRF token).
    pub fn console_secret(&self) -> Result<Zeroizing<String>, RandomError> {
        let bytes = Zeroizing::new(self.random.bytes::<32>()?);
        Ok(Zeroizing::new(hex::encode(bytes.as_slice())))
    }
}
