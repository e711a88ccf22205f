//! Documents and seal pictures of orders: content-addressed blobs (one copy per distinct
//! content, keyed and checked by SHA-256), each order's attachments pointing at them, and the
//! seal pictures' normalised PNGs kept at intake for provisioning.

use super::{DbContext, Store, StoreError, Tx};
use crate::audit::event::AttachmentHash;
use crate::domain::OrderNo;
use sha2::{Digest, Sha256};
use sqlx::{FromRow, Row};
use std::collections::HashSet;
use std::sync::Arc;

/// Bytes with their SHA-256, hashed once when made: the key of the content in `blobs`. Shared,
/// so a document that many orders of one import reference is read, hashed and held once.
#[derive(Debug, Clone)]
pub struct HashedBytes {
    bytes: Arc<[u8]>,
    sha256: Arc<str>,
}

impl HashedBytes {
    /// Hashes `bytes`.
    pub fn new(bytes: impl Into<Arc<[u8]>>) -> HashedBytes {
        let bytes = bytes.into();
        let sha256 = hex::encode(Sha256::digest(&bytes)).into();
        HashedBytes { bytes, sha256 }
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// SHA-256 of the bytes, lowercase hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
}

/// An attachment to store with a new order.
#[derive(Debug, Clone)]
pub struct NewAttachment {
    /// `document` or `seal`.
    pub role: &'static str,
    /// Document or seal kind name.
    pub kind: &'static str,
    /// File name as given in the application.
    pub file_name: String,
    /// Media type recognised from the content.
    pub media_type: &'static str,
    /// The bytes.
    pub content: HashedBytes,
    /// A seal picture's normalised PNG, kept so provisioning does not normalise the picture
    /// again; `None` for documents.
    pub normalized: Option<KeptPicture>,
}

/// The normalised PNG of a seal picture (`seal::normalize_seal_picture` of the attachment's
/// content) and the version of the code that made it (`seal::NORMALIZATION_VERSION`).
#[derive(Debug, Clone)]
pub struct KeptPicture {
    /// Version of the normalisation.
    pub version: i64,
    /// The PNG.
    pub png: HashedBytes,
}

/// A seal picture as provisioning needs it (see [`Store::seal_picture`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredSealPicture {
    /// The PNG the intake normalised and kept, its SHA-256 checked.
    Normalized(Vec<u8>),
    /// The picture as imported (its SHA-256 checked), with no kept PNG of the asked version: an
    /// order imported before pictures were kept, or normalised by other code. The caller
    /// normalises it.
    Source(Vec<u8>),
}

/// Stored facts about an attachment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct AttachmentMeta {
    /// `document` or `seal`.
    pub role: String,
    /// Kind name.
    pub kind: String,
    /// File name as given.
    pub file_name: String,
    /// Media type.
    pub media_type: String,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: i64,
}

impl Store {
    /// The content of an attachment.
    pub async fn attachment_content(
        &self,
        order_no: &OrderNo,
        role: &str,
        kind: &str,
    ) -> Result<Option<(AttachmentMeta, Vec<u8>)>, StoreError> {
        let row = sqlx::query(
            "SELECT a.role, a.kind, a.file_name, a.media_type, a.sha256, b.size, b.content \
             FROM attachments a JOIN blobs b ON b.sha256 = a.sha256 \
             WHERE a.order_no = $1 AND a.role = $2 AND a.kind = $3",
        )
        .bind(order_no.as_str())
        .bind(role)
        .bind(kind)
        .fetch_optional(self.pool())
        .await
        .ctx("reading an attachment")?;
        let Some(r) = row else { return Ok(None) };
        let meta = AttachmentMeta::from_row(&r).ctx("reading an attachment")?;
        let content: Vec<u8> = r.try_get("content").ctx("reading an attachment")?;
        // Content addressing doubles as an integrity check of what we hand to the seal maker.
        if hex::encode(Sha256::digest(&content)) != meta.sha256 {
            return Err(StoreError::Corrupt(format!(
                "attachment {role}/{kind} of order {order_no} does not match its SHA-256"
            )));
        }
        Ok(Some((meta, content)))
    }

    /// The seal picture `kind` of an order as provisioning needs it: the PNG the intake kept
    /// for normalisation `version` when there is one, else the picture as imported. Either is
    /// checked against its SHA-256 (the blob's key); `None` when the order has no such picture.
    pub async fn seal_picture(
        &self,
        order_no: &OrderNo,
        kind: &str,
        version: i64,
    ) -> Result<Option<StoredSealPicture>, StoreError> {
        let row = sqlx::query(
            "SELECT b.sha256, b.content, n.png_sha256 \
             FROM attachments a \
             LEFT JOIN normalized_pictures n ON n.source_sha256 = a.sha256 AND n.version = $3 \
             JOIN blobs b ON b.sha256 = COALESCE(n.png_sha256, a.sha256) \
             WHERE a.order_no = $1 AND a.role = 'seal' AND a.kind = $2",
        )
        .bind(order_no.as_str())
        .bind(kind)
        .bind(version)
        .fetch_optional(self.pool())
        .await
        .ctx("reading a seal picture")?;
        let Some(r) = row else { return Ok(None) };
        let sha: String = r.try_get("sha256").ctx("reading a seal picture")?;
        let content: Vec<u8> = r.try_get("content").ctx("reading a seal picture")?;
        let kept: Option<String> = r.try_get("png_sha256").ctx("reading a seal picture")?;
        // Content addressing doubles as an integrity check of what we hand to the seal maker.
        if hex::encode(Sha256::digest(&content)) != sha {
            return Err(StoreError::Corrupt(format!(
                "seal picture {kind} of order {order_no} does not match its SHA-256"
            )));
        }
        Ok(Some(match kept {
            Some(_) => StoredSealPicture::Normalized(content),
            None => StoredSealPicture::Source(content),
        }))
    }
}

/// The blobs and kept pictures one import's transaction wrote (by SHA-256): many orders of a
/// file share their documents, which are then written once.
#[derive(Default)]
pub(super) struct Written {
    blobs: HashSet<Arc<str>>,
    kept: HashSet<(Arc<str>, i64)>,
}

/// Stores `content` in `blobs` unless it is there already.
async fn insert_blob(
    tx: &mut Tx,
    content: &HashedBytes,
    stored: &mut Written,
) -> Result<(), StoreError> {
    if stored.blobs.contains(&content.sha256) {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO blobs (sha256, size, content) VALUES ($1, $2, $3) \
         ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(content.sha256())
    .bind(content.bytes().len() as i64)
    .bind(content.bytes())
    .execute(tx.conn())
    .await
    .ctx("storing a document")?;
    stored.blobs.insert(content.sha256.clone());
    Ok(())
}

/// Stores an order's attachments (and their blobs, and kept pictures) in `tx`; their hashes for
/// the order's audit record.
pub(super) async fn insert_attachments(
    tx: &mut Tx,
    order_no: &OrderNo,
    attachments: &[NewAttachment],
    stored: &mut Written,
) -> Result<Vec<AttachmentHash>, StoreError> {
    let mut hashes = Vec::new();
    for a in attachments {
        insert_blob(tx, &a.content, stored).await?;
        if let Some(kept) = &a.normalized {
            let key = (a.content.sha256.clone(), kept.version);
            if !stored.kept.contains(&key) {
                insert_blob(tx, &kept.png, stored).await?;
                sqlx::query(
                    "INSERT INTO normalized_pictures (source_sha256, version, png_sha256) \
                     VALUES ($1, $2, $3) ON CONFLICT (source_sha256, version) DO NOTHING",
                )
                .bind(a.content.sha256())
                .bind(kept.version)
                .bind(kept.png.sha256())
                .execute(tx.conn())
                .await
                .ctx("keeping a normalised seal picture")?;
                stored.kept.insert(key);
            }
        }
        hashes.push(AttachmentHash {
            role: a.role.to_string(),
            kind: a.kind.to_string(),
            sha256: a.content.sha256().to_string(),
        });
    }
    if attachments.is_empty() {
        return Ok(hashes);
    }
    // One statement for all of the order's attachments (a round trip each on PostgreSQL
    // otherwise); only placeholders are formatted into the text.
    let rows: Vec<String> = (0..attachments.len())
        .map(|i| {
            let p = |k: usize| format!("${}", i * 6 + k);
            format!(
                "({}, {}, {}, {}, {}, {})",
                p(1),
                p(2),
                p(3),
                p(4),
                p(5),
                p(6)
            )
        })
        .collect();
    let sql = format!(
        "INSERT INTO attachments (order_no, role, kind, file_name, media_type, sha256) VALUES {}",
        rows.join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for a in attachments {
        query = query
            .bind(order_no.as_str())
            .bind(a.role)
            .bind(a.kind)
            .bind(&a.file_name)
            .bind(a.media_type)
            .bind(a.content.sha256());
    }
    query
        .execute(tx.conn())
        .await
        .ctx("storing an order's attachments")?;
    Ok(hashes)
}
