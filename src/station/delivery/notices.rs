//! Notices to the applicant, queued: inside the transaction of the state change that causes
//! them (review, shipment, PIN delivery confirmed, revocation), or by the expiry tick of the
//! delivery worker. The worker sends them (`worker::notices`).
//!
//! Each notice goes to the order's handler: by SMS to the handler's mobile (unless the SMS
//! channel is Aliyun, whose messages must match an approved template per text), and by e-mail to
//! the handler's address when `[delivery.email]` is configured. `[delivery.notices] enabled =
//! false` queues none. The store's unique key makes every queueing of an event after the first
//! a no-op; each queued notice is audited (`notice.queued`).

use crate::audit::event::{AuditEvent, NoticeQueued};
use crate::clock::parse_utc;
use crate::config::{Config, SmsKind};
use crate::domain::delivery::{mask_email, mask_phone};
use crate::domain::notification::{Notice, NoticeMedium, expiry_threshold};
use crate::domain::{CertSerial, Order, OrderNo};
use crate::station::Station;
use crate::store::{
    Actor, AuditEntry, NewNotification, NoticeAttempt, NotificationRecord, StoreError, Tx,
};

/// The media notices are queued on, as configured.
pub(crate) fn notice_media(config: &Config) -> Vec<NoticeMedium> {
    let d = &config.delivery;
    if !d.notices.enabled {
        return Vec::new();
    }
    let mut media = Vec::new();
    if d.sms.kind != SmsKind::Aliyun {
        media.push(NoticeMedium::Sms);
    }
    if d.email.is_some() {
        media.push(NoticeMedium::Email);
    }
    media
}

/// Queues `notice` about `order` on each of `media` inside `tx`, and audits each one queued.
/// `delivery_id` names the PIN delivery of a `PinSent` notice. Returns the ids queued (none when
/// this event had its notices already).
pub(crate) async fn queue_notices(
    tx: &mut Tx,
    actor: &Actor,
    media: &[NoticeMedium],
    order: &Order,
    notice: &Notice,
    delivery_id: Option<&str>,
) -> Result<Vec<String>, StoreError> {
    let order_no = order.order_no.clone();
    let event_ref = notice.event_ref(delivery_id);
    let mut queued = Vec::new();
    for &medium in media {
        let destination = match medium {
            NoticeMedium::Sms => mask_phone(&order.handler.mobile),
            NoticeMedium::Email => mask_email(&order.handler.email),
        };
        let new = NewNotification {
            order_no: &order_no,
            notice,
            event_ref: &event_ref,
            medium,
            destination_masked: &destination,
        };
        if let Some(id) = tx.queue_notification(&new).await? {
            tx.audit(
                actor,
                AuditEntry::order(
                    &order.order_no,
                    AuditEvent::NoticeQueued(NoticeQueued {
                        notification_id: id.clone(),
                        kind: notice.kind().as_str().to_string(),
                        event_ref: event_ref.clone(),
                        medium: medium.as_str().to_string(),
                        destination,
                    }),
                ),
            )
            .await?;
            queued.push(id);
        }
    }
    Ok(queued)
}

/// A notice and its attempts, as `deliver notices` shows them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NoticeStatus {
    /// The notice.
    #[serde(flatten)]
    pub notice: NotificationRecord,
    /// Its attempts.
    pub attempt_log: Vec<NoticeAttempt>,
}

/// What the expiry tick queued.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ExpiryTick {
    /// `(order, serial, days)` for each certificate whose notice was queued now.
    pub queued: Vec<(OrderNo, CertSerial, i64)>,
}

impl Station {
    /// The media notices go on, as configured.
    pub(crate) fn notice_media(&self) -> Vec<NoticeMedium> {
        notice_media(&self.config)
    }

    /// Queues `notice` about `order` in `tx` (see [`queue_notices`]).
    pub(crate) async fn queue_notices_in(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        order: &Order,
        notice: &Notice,
    ) -> Result<Vec<String>, StoreError> {
        queue_notices(tx, actor, &self.notice_media(), order, notice, None).await
    }

    /// The expiry tick: for every certificate on its token whose notAfter is at most 30 days
    /// away, the notice of the threshold it crossed (30 or 7 days), once each. Run by every
    /// pass of the delivery worker; running it again queues nothing new.
    pub async fn queue_expiry_notices(&self) -> Result<ExpiryTick, StoreError> {
        let media = self.notice_media();
        let mut tick = ExpiryTick::default();
        if media.is_empty() {
            return Ok(tick);
        }
        let now = self.clock.now();
        let horizon = now + time::Duration::days(30);
        let actor = self.station_actor();
        for (order_no, serial, not_after) in self.store.live_certificates_ending_by(horizon).await?
        {
            let Some(end) = parse_utc(&not_after) else {
                return Err(StoreError::Corrupt(format!(
                    "certificate {serial}: notAfter {not_after:?}"
                )));
            };
            let Some(days) = expiry_threshold(now, end) else {
                continue;
            };
            let notice = Notice::Expiring {
                days,
                not_after: end.to_offset(crate::clock::BEIJING).date().to_string(),
                serial: serial.to_string(),
            };
            let mut tx = self.store.begin_write(now).await?;
            let order = tx.order_in_tx(&order_no).await?;
            let queued = queue_notices(&mut tx, &actor, &media, &order, &notice, None).await?;
            tx.commit().await?;
            if !queued.is_empty() {
                tick.queued.push((order_no, serial, days));
            }
        }
        Ok(tick)
    }

    /// Notices with their attempt journals, for `deliver notices`; only `order_no`'s when
    /// given.
    pub async fn notice_status(
        &self,
        order_no: Option<&OrderNo>,
    ) -> Result<Vec<NoticeStatus>, StoreError> {
        let mut out = Vec::new();
        for notice in self.store.notifications(order_no).await? {
            let attempt_log = self.store.notice_attempts(&notice.id).await?;
            out.push(NoticeStatus {
                notice,
                attempt_log,
            });
        }
        Ok(out)
    }
}
