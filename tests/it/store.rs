//! The store suite, ONE set of cases run against both backends: an embedded SQLite file and a
//! fresh database on the local PostgreSQL server (never skipped: see `pg::PgDatabase`).
//!
//! Each case is an `async fn(&Db)`; `store_suite!` instantiates every case twice, as
//! `store::sqlite::<case>` and `store::postgres::<case>`.

use crate::pg::PgDatabase;
use crate::support::{cert_serial, order_fixtures, order_no};
use keystation::audit::event::{AuditEvent, TokenReleased};
use keystation::audit::{GENESIS_HASH, verify_chain};
use keystation::domain::SealedKey;
use keystation::domain::lease::{LeaseDecision, LeaseHolder, LeaseKind, Liveness, TakeoverReason};
use keystation::domain::{
    CertificateStatus, ImageType, OrderEvent, OrderState, ValidationContext, validate_order,
};
use keystation::store::{
    Actor, AuditEntry, AuditFilter, Backend, HashedBytes, KeptPicture, LeaseRequest, LeaseTaken,
    NewAttachment, NewOrder, Review, Store, StoreError, StoredSealPicture, Tx,
};
use keystation::store::{CertificateRecord, OrderRecord};
use sha2::{Digest, Sha256};
use sqlx::Connection;
use time::OffsetDateTime;
use time::macros::{date, datetime};

const T0: OffsetDateTime = datetime!(2026-11-24 02:00:00 UTC);

/// One backend's database, a store connected to it, and what keeps it alive.
struct Db {
    store: Store,
    url: String,
    _dir: Option<tempfile::TempDir>,
    _pg: Option<PgDatabase>,
}

impl Db {
    async fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/station.db?mode=rwc", dir.path().display());
        let store = Store::connect(&url).await.unwrap();
        assert_eq!(store.backend(), Backend::Sqlite);
        Db {
            store,
            url,
            _dir: Some(dir),
            _pg: None,
        }
    }

    async fn postgres() -> Db {
        let pg = PgDatabase::create().await;
        let store = Store::connect(&pg.url).await.unwrap();
        assert_eq!(store.backend(), Backend::Postgres);
        Db {
            store,
            url: pg.url.clone(),
            _dir: None,
            _pg: Some(pg),
        }
    }

    /// A second, independent connection pool to the same database (another station or CLI).
    async fn another_store(&self) -> Store {
        Store::connect(&self.url).await.unwrap()
    }

    /// Runs raw SQL on a separate connection, as someone with database access would.
    async fn raw(&self, sql: &'static str) -> Result<u64, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&self.url).await?;
        let done = sqlx::query(sql).execute(&mut conn).await;
        conn.close().await?;
        Ok(done?.rows_affected())
    }

    async fn count(&self, table: &'static str) -> i64 {
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&self.url).await.unwrap();
        let sql = match table {
            "orders" => "SELECT COUNT(*) AS n FROM orders",
            "blobs" => "SELECT COUNT(*) AS n FROM blobs",
            "attachments" => "SELECT COUNT(*) AS n FROM attachments",
            "normalized_pictures" => "SELECT COUNT(*) AS n FROM normalized_pictures",
            "audit_events" => "SELECT COUNT(*) AS n FROM audit_events",
            other => panic!("no table {other} in this test"),
        };
        let row = sqlx::query(sql).fetch_one(&mut conn).await.unwrap();
        conn.close().await.unwrap();
        sqlx::Row::get::<i64, _>(&row, "n")
    }

    /// Inserts `orders` as the intake does, at `at`.
    async fn import(&self, orders: &[NewOrder], at: OffsetDateTime) {
        self.store
            .insert_orders(orders, &operator("intake"), at)
            .await
            .unwrap();
    }

    /// The reviewer named in `review` records it at `at`.
    async fn review(
        &self,
        no: &str,
        review: &Review,
        at: OffsetDateTime,
    ) -> Result<OrderState, StoreError> {
        self.store
            .review(&order_no(no), review, &operator(&review.operator), at)
            .await
    }

    /// KS-ST-0001 and KS-ST-0002 imported at T0 (fixtures 0 and 1), the first approved by alice.
    async fn two_orders_first_approved(&self) {
        self.import(&[sample(0, "KS-ST-0001"), sample(1, "KS-ST-0002")], T0)
            .await;
        self.review("KS-ST-0001", &approve("alice"), T0)
            .await
            .unwrap();
    }

    /// The stored order `no`, which must exist.
    async fn order(&self, no: &str) -> OrderRecord {
        self.store.order(&order_no(no)).await.unwrap().unwrap()
    }

    /// KS-ST-0001 (fixture 0) imported at T0, with `certificates` written for it.
    async fn one_order_with(&self, certificates: &[&CertificateRecord]) {
        self.import(&[sample(0, "KS-ST-0001")], T0).await;
        let mut tx = self.store.begin_write(T0).await.unwrap();
        for cert in certificates {
            tx.insert_certificate(cert).await.unwrap();
        }
        tx.commit().await.unwrap();
    }

    /// KS-ST-0001's certificates as the store reads them.
    async fn certificates(&self) -> Result<Vec<CertificateRecord>, StoreError> {
        self.store
            .certificates_of_order(&order_no("KS-ST-0001"))
            .await
    }

    /// Every audit record, in chain order.
    async fn audit_all(&self) -> Vec<keystation::audit::AuditRecord> {
        self.store
            .audit_records(&AuditFilter::default())
            .await
            .unwrap()
    }

    /// The whole audit chain verifies against the stored head; returns the actions in order.
    async fn chain_actions(&self) -> Vec<String> {
        let records = self.audit_all().await;
        let (seq, hash) = self.store.audit_head().await.unwrap();
        verify_chain(&records, (seq, &hash)).unwrap();
        records.into_iter().map(|r| r.action).collect()
    }
}

fn operator(name: &str) -> Actor {
    Actor {
        name: name.to_string(),
        station_id: Some("station-test".into()),
        operation_id: format!("op-{name}"),
    }
}

/// The valid fixture `index` (0..3) under order number `order_no`, validated and normalised by
/// the domain, with its real document and seal bytes.
fn sample(index: usize, order_no: &str) -> NewOrder {
    let dir = order_fixtures().join("valid");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files[index]).unwrap()).unwrap();
    json["order_no"] = serde_json::json!(order_no);
    let ctx = ValidationContext {
        today: date!(2026 - 11 - 24),
        uscc_checksum_override: None,
    };
    let read = |rel: &str| std::fs::read(dir.join(rel)).unwrap();
    let valid = validate_order(&json, &ctx, &mut |rel, _| {
        let bytes = read(rel);
        keystation::domain::FileFacts::Found {
            size: bytes.len() as u64,
            image: ImageType::sniff(&bytes),
        }
    })
    .unwrap();
    let order = &valid.order;
    let attachments = order
        .attached_files()
        .map(|(role, kind, file)| attachment(role, kind, file, read(file)))
        .collect();
    NewOrder {
        order: valid.order,
        warnings: valid.warnings,
        uscc_override_reason: None,
        attachments,
    }
}

fn attachment(
    role: &'static str,
    kind: &'static str,
    file: &str,
    content: Vec<u8>,
) -> NewAttachment {
    NewAttachment {
        role,
        kind,
        file_name: file.to_string(),
        media_type: ImageType::sniff(&content).unwrap().media_type(),
        content: HashedBytes::new(content),
        normalized: None,
    }
}

fn approve(by: &str) -> Review {
    Review {
        event: OrderEvent::Approve,
        operator: by.to_string(),
        reason: None,
    }
}

fn reject(by: &str, why: &str) -> Review {
    Review {
        event: OrderEvent::Reject,
        operator: by.to_string(),
        reason: Some(why.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// The cases.

async fn insert_and_read_back_equal(db: &Db) {
    let new = sample(0, "KS-ST-0001");
    db.import(std::slice::from_ref(&new), T0).await;
    let rec = db.order("KS-ST-0001").await;
    assert_eq!(rec.order, new.order);
    assert_eq!(rec.state, OrderState::Submitted);
    assert_eq!(rec.submitted_at, "2026-11-24T02:00:00.000000Z");
    assert_eq!(rec.updated_at, rec.submitted_at);
    assert_eq!(rec.reviewed_by, None);
    assert_eq!(rec.uscc_override_reason, None);
    assert_eq!(rec.warnings, serde_json::json!([]));
    assert_eq!(rec.attachments.len(), new.attachments.len());
    for a in &new.attachments {
        let meta = rec
            .attachments
            .iter()
            .find(|m| m.role == a.role && m.kind == a.kind)
            .unwrap();
        assert_eq!(meta.file_name, a.file_name);
        assert_eq!(meta.media_type, a.media_type);
        assert_eq!(meta.size, a.content.bytes().len() as i64);
        assert_eq!(meta.sha256, a.content.sha256());
    }
    assert!(
        db.store
            .order(&order_no("KS-ST-9999"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        db.store
            .existing_orders(&[order_no("KS-ST-0001"), order_no("KS-ST-9999")])
            .await
            .unwrap(),
        ["KS-ST-0001"]
    );
}

/// What a group of sends reads in one query: each order with its state and its sealed PIN
/// (none before one is stored), and nothing for an order that does not exist.
async fn send_material_reads_a_group_of_orders_with_their_sealed_pins(db: &Db) {
    let (a, b) = (sample(0, "KS-ST-0001"), sample(1, "KS-ST-0002"));
    db.import(&[a.clone(), b.clone()], T0).await;
    let serial: keystation::domain::TokenSerial = "0123456789abcdef".parse().unwrap();
    let sealed = keystation::domain::SealedPin(b"KSP1 sealed blob".to_vec());
    let mut tx = db.store.begin_write(T0).await.unwrap();
    tx.put_sealed_pin(&order_no("KS-ST-0002"), &serial, &sealed)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let (n1, n2, missing) = (
        order_no("KS-ST-0001"),
        order_no("KS-ST-0002"),
        order_no("KS-ST-9999"),
    );
    let got = db.store.send_material(&[&n1, &n2, &missing]).await.unwrap();
    assert_eq!(got.len(), 2, "the missing order is absent");
    assert_eq!(got[&n1].order, a.order);
    assert_eq!(got[&n1].state, OrderState::Submitted);
    assert!(got[&n1].sealed.is_none());
    assert_eq!(got[&n2].order, b.order);
    let pin = got[&n2].sealed.as_ref().expect("the stored sealed PIN");
    assert_eq!((&pin.token_serial, &pin.sealed), (&serial, &sealed));
}

async fn duplicate_order_is_rejected_and_changes_nothing(db: &Db) {
    let new = sample(0, "KS-ST-0001");
    db.import(std::slice::from_ref(&new), T0).await;
    let head = db.store.audit_head().await.unwrap();
    let again = sample(2, "KS-ST-0001");
    let err = db
        .store
        .insert_orders(&[again], &operator("intake"), T0 + time::Duration::hours(1))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::DuplicateOrder(no) if no == "KS-ST-0001"),
        "{err:?}"
    );
    // The first order is untouched, no audit record was added.
    let rec = db.order("KS-ST-0001").await;
    assert_eq!(rec.order, new.order);
    assert_eq!(db.store.audit_head().await.unwrap(), head);
    assert_eq!(db.count("orders").await, 1);
}

async fn list_by_state_is_fifo(db: &Db) {
    // Arrival order deliberately differs from order-number order.
    for (i, no) in ["KS-ST-0002", "KS-ST-0001", "KS-ST-0003"]
        .iter()
        .enumerate()
    {
        db.import(&[sample(i, no)], T0 + time::Duration::minutes(i as i64))
            .await;
    }
    let numbers = |list: Vec<keystation::store::OrderSummary>| {
        list.into_iter().map(|o| o.order_no).collect::<Vec<_>>()
    };
    assert_eq!(
        numbers(db.store.list_orders(None).await.unwrap()),
        ["KS-ST-0002", "KS-ST-0001", "KS-ST-0003"]
    );
    db.review(
        "KS-ST-0001",
        &approve("alice"),
        T0 + time::Duration::hours(1),
    )
    .await
    .unwrap();
    assert_eq!(
        numbers(
            db.store
                .list_orders(Some(OrderState::Submitted))
                .await
                .unwrap()
        ),
        ["KS-ST-0002", "KS-ST-0003"]
    );
    assert_eq!(
        numbers(
            db.store
                .list_orders(Some(OrderState::Approved))
                .await
                .unwrap()
        ),
        ["KS-ST-0001"]
    );
    assert!(
        db.store
            .list_orders(Some(OrderState::Shipped))
            .await
            .unwrap()
            .is_empty()
    );
    let summary = &db.store.list_orders(None).await.unwrap()[0];
    assert_eq!(summary.company_name, "北京星河数智科技有限公司");
    assert_eq!(summary.uscc, "91110000600037341L");
    assert_eq!(summary.auth_method, "legal_rep_phone");
}

async fn review_changes_state_and_audits_in_one_transaction(db: &Db) {
    db.import(&[sample(0, "KS-ST-0001"), sample(1, "KS-ST-0002")], T0)
        .await;
    let t1 = T0 + time::Duration::hours(3);
    let to = db
        .review("KS-ST-0001", &approve("alice"), t1)
        .await
        .unwrap();
    assert_eq!(to, OrderState::Approved);
    let rec = db.order("KS-ST-0001").await;
    assert_eq!(rec.state, OrderState::Approved);
    assert_eq!(rec.reviewed_by.as_deref(), Some("alice"));
    assert_eq!(
        rec.reviewed_at.as_deref(),
        Some("2026-11-24T05:00:00.000000Z")
    );
    assert_eq!(rec.updated_at, "2026-11-24T05:00:00.000000Z");

    let history = db
        .store
        .audit_records(&AuditFilter {
            order_no: Some("KS-ST-0001".parse().unwrap()),
        })
        .await
        .unwrap();
    let last = history.last().unwrap();
    assert_eq!(last.action, "order.approved");
    assert_eq!(last.actor, "alice");
    assert_eq!(last.operation_id, "op-alice");
    assert_eq!(
        last.at, rec.updated_at,
        "one instant for the change and its record"
    );

    // Proof of atomicity: make the audit append fail (a record already occupies the next seq,
    // planted behind the store's back). The state change must roll back with it.
    db.raw(
        "INSERT INTO audit_events (seq, at, actor, operation_id, action, details, prev_hash, hash) \
         VALUES (4, 'x', 'x', 'x', 'planted', '{}', 'x', 'x')",
    )
    .await
    .unwrap();
    let err = db
        .review("KS-ST-0002", &reject("bob", "stamp missing"), t1)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Db { .. }), "{err:?}");
    let rec = db.order("KS-ST-0002").await;
    assert_eq!(
        rec.state,
        OrderState::Submitted,
        "state changed without its audit record"
    );
    assert_eq!(rec.reviewed_by, None);
    assert_eq!(rec.review_reason, None);
    assert_eq!(db.store.audit_head().await.unwrap().0, 3);
}

async fn illegal_transition_is_refused_and_changes_nothing(db: &Db) {
    db.import(&[sample(0, "KS-ST-0001")], T0).await;
    db.review("KS-ST-0001", &approve("alice"), T0)
        .await
        .unwrap();
    let before = db.order("KS-ST-0001").await;
    let head = db.store.audit_head().await.unwrap();
    let later = T0 + time::Duration::days(1);

    for review in [approve("bob"), reject("bob", "changed my mind")] {
        let err = db.review("KS-ST-0001", &review, later).await.unwrap_err();
        assert!(
            matches!(
                &err,
                StoreError::Illegal { order_no, source }
                    if order_no == "KS-ST-0001" && source.from == OrderState::Approved
            ),
            "{err:?}"
        );
    }
    let err = db
        .review("KS-ST-0404", &approve("bob"), later)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::OrderNotFound(_)), "{err:?}");

    let after = db.order("KS-ST-0001").await;
    assert_eq!(after.state, OrderState::Approved);
    assert_eq!(after.reviewed_by, before.reviewed_by);
    assert_eq!(after.reviewed_at, before.reviewed_at);
    assert_eq!(after.review_reason, None);
    assert_eq!(after.updated_at, before.updated_at);
    assert_eq!(db.store.audit_head().await.unwrap(), head);
}

async fn concurrent_approvals_of_one_order_exactly_one_wins(db: &Db) {
    // Two stores with their own connections: two operators' CLIs, or two stations.
    let other = db.another_store().await;
    let orders: Vec<NewOrder> = (0..6)
        .map(|i| sample(i % 3, &format!("KS-RACE-{i:04}")))
        .collect();
    db.import(&orders, T0).await;
    for new in &orders {
        let no = new.order.order_no.clone();
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let race = |store: Store, who: &'static str| {
            let (no, barrier) = (no.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.review(&no, &approve(who), &operator(who), T0).await
            })
        };
        let a = race(db.store.clone(), "alice");
        let b = race(other.clone(), "bob");
        let results = [a.await.unwrap(), b.await.unwrap()];
        let winners: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
        assert_eq!(winners.len(), 1, "{no}: {results:?}");
        let loser = results.iter().find_map(|r| r.as_ref().err()).unwrap();
        assert!(
            matches!(
                loser,
                StoreError::Illegal { .. } | StoreError::StateConflict { .. }
            ),
            "{no}: {loser:?}"
        );
        let rec = db.store.order(&no).await.unwrap().unwrap();
        assert_eq!(rec.state, OrderState::Approved);
        let approvals = db
            .store
            .audit_records(&AuditFilter {
                order_no: Some(no.clone()),
            })
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.action == "order.approved")
            .collect::<Vec<_>>();
        assert_eq!(approvals.len(), 1, "{no}");
        assert_eq!(Some(&approvals[0].actor), rec.reviewed_by.as_ref());
    }
    let actions = db.chain_actions().await;
    assert_eq!(actions.len(), 12);
    other.close().await;
}

async fn attachments_round_trip_with_sha256(db: &Db) {
    let first = sample(0, "KS-ST-0001");
    let second = sample(1, "KS-ST-0002"); // same documents, one seal
    db.import(&[first.clone(), second.clone()], T0).await;
    for new in [&first, &second] {
        for a in &new.attachments {
            let (meta, content) = db
                .store
                .attachment_content(&new.order.order_no, a.role, a.kind)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(content, a.content.bytes(), "{} {}", a.role, a.kind);
            assert_eq!(meta.sha256, hex::encode(Sha256::digest(&content)));
            assert_eq!(meta.size, content.len() as i64);
            assert_eq!(meta.media_type, a.media_type);
        }
    }
    assert!(
        db.store
            .attachment_content(&order_no("KS-ST-0002"), "seal", "legal_rep")
            .await
            .unwrap()
            .is_none()
    );
    // Content-addressed: the shared pictures are stored once.
    let distinct: std::collections::BTreeSet<_> = first
        .attachments
        .iter()
        .chain(&second.attachments)
        .map(|a| a.content.sha256().to_string())
        .collect();
    assert_eq!(db.count("blobs").await, distinct.len() as i64);
    assert_eq!(
        db.count("attachments").await,
        (first.attachments.len() + second.attachments.len()) as i64
    );

    // A stored picture altered behind the store's back is caught on read, never handed out.
    let tamper = match db.store.backend() {
        Backend::Sqlite => "UPDATE blobs SET content = X'89504E470D0A1A0A00'",
        Backend::Postgres => "UPDATE blobs SET content = decode('89504e470d0a1a0a00', 'hex')",
    };
    db.raw(tamper).await.unwrap();
    let err = db
        .store
        .attachment_content(&order_no("KS-ST-0001"), "document", "business_license")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
}

/// A seal picture's normalised PNG kept at intake is handed to provisioning, checked against its
/// SHA-256, once per distinct picture; without one of the asked version, the picture itself.
async fn kept_seal_pictures_round_trip(db: &Db) {
    let png = HashedBytes::new(b"\x89PNG\r\n\x1a\n a normalised picture".to_vec());
    let keep = |mut new: NewOrder| {
        for a in new.attachments.iter_mut().filter(|a| a.kind == "company") {
            a.normalized = Some(KeptPicture {
                version: 7,
                png: png.clone(),
            });
        }
        new
    };
    let first = keep(sample(0, "KS-ST-0001")); // company + legal_rep seals
    let second = keep(sample(1, "KS-ST-0002")); // the same company picture
    db.import(std::slice::from_ref(&first), T0).await;
    db.import(&[second], T0).await;
    assert_eq!(db.count("normalized_pictures").await, 1);
    let picture = |no: &'static str, kind: &'static str, version: i64| async move {
        db.store
            .seal_picture(&order_no(no), kind, version)
            .await
            .unwrap()
    };
    let kept = Some(StoredSealPicture::Normalized(png.bytes().to_vec()));
    assert_eq!(picture("KS-ST-0001", "company", 7).await, kept);
    assert_eq!(picture("KS-ST-0002", "company", 7).await, kept);
    let source = |kind: &str| {
        let a = first.attachments.iter().find(|a| a.kind == kind).unwrap();
        Some(StoredSealPicture::Source(a.content.bytes().to_vec()))
    };
    // Another normalisation version, or a picture nothing was kept for: the picture itself.
    assert_eq!(picture("KS-ST-0001", "company", 8).await, source("company"));
    assert_eq!(
        picture("KS-ST-0001", "legal_rep", 7).await,
        source("legal_rep")
    );
    assert_eq!(picture("KS-ST-0002", "legal_rep", 7).await, None);

    // A kept PNG altered behind the store's back is caught on read, never sealed.
    let tamper = match db.store.backend() {
        Backend::Sqlite => {
            "UPDATE blobs SET content = X'89504E470D0A1A0A01' \
                            WHERE sha256 IN (SELECT png_sha256 FROM normalized_pictures)"
        }
        Backend::Postgres => {
            "UPDATE blobs SET content = decode('89504e470d0a1a0a01', 'hex') \
                              WHERE sha256 IN (SELECT png_sha256 FROM normalized_pictures)"
        }
    };
    assert_eq!(db.raw(tamper).await.unwrap(), 1);
    let err = db
        .store
        .seal_picture(&order_no("KS-ST-0001"), "company", 7)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
}

async fn audit_chain_verifies(db: &Db) {
    assert!(db.chain_actions().await.is_empty());
    assert_eq!(
        db.store.audit_head().await.unwrap(),
        (0, GENESIS_HASH.to_string())
    );
    db.two_orders_first_approved().await;
    db.review("KS-ST-0002", &reject("bob", "licence expired"), T0)
        .await
        .unwrap();
    // Any other writer appends to the same chain through a transaction.
    let mut tx = db.store.begin_write(T0).await.unwrap();
    tx.audit(
        &operator("carol"),
        AuditEntry::order(
            &order_no("KS-ST-0002"),
            AuditEvent::TokenReleased(TokenReleased {
                binding_id: "b-1".into(),
                reason: "called".into(),
            }),
        ),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    assert_eq!(
        db.chain_actions().await,
        [
            "order.imported",
            "order.imported",
            "order.approved",
            "order.rejected",
            "provision.token_released"
        ]
    );
    let records = db.audit_all().await;
    let seqs: Vec<i64> = records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_eq!(records[0].prev_hash, GENESIS_HASH);
    let rejected: serde_json::Value = serde_json::from_str(&records[3].details).unwrap();
    assert_eq!(rejected["reason"], "licence expired");
    // The verifier is not a rubber stamp: the same records with one edit fail.
    let mut edited = records.clone();
    edited[1].actor = "mallory".into();
    let (seq, hash) = db.store.audit_head().await.unwrap();
    assert!(verify_chain(&edited, (seq, &hash)).is_err());
}

async fn many_records_in_one_transaction_are_chained_in_order(db: &Db) {
    // A transaction's records wait in it and are inserted at commit, many rows per statement:
    // 150 records make more than two statements' worth, each row with its own values.
    let record = |i: usize| {
        AuditEntry::order(
            &order_no("KS-ST-0001"),
            AuditEvent::TokenReleased(TokenReleased {
                binding_id: format!("b-{i}"),
                reason: format!("reason {i}"),
            }),
        )
    };
    // A transaction dropped without commit leaves none of its records, nor the head moved.
    let mut dropped = db.store.begin_write(T0).await.unwrap();
    for i in 0..3 {
        dropped.audit(&operator("carol"), record(i)).await.unwrap();
    }
    drop(dropped);
    assert!(db.audit_all().await.is_empty());
    assert_eq!(db.store.audit_head().await.unwrap().0, 0);

    let mut tx = db.store.begin_write(T0).await.unwrap();
    for i in 0..150 {
        let seq = tx.audit(&operator("carol"), record(i)).await.unwrap();
        assert_eq!(seq, i64::try_from(i).unwrap() + 1);
    }
    let head_in_tx = tx.audit_head();
    // The transaction reads its own records (anchoring reads the trail in its transaction).
    let own: Vec<i64> = tx
        .audit_records_from(140)
        .await
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(own, (140..=150).collect::<Vec<i64>>());
    tx.commit().await.unwrap();

    let records = db.audit_all().await;
    assert_eq!(records.len(), 150);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.seq, i64::try_from(i).unwrap() + 1);
        let details: serde_json::Value = serde_json::from_str(&r.details).unwrap();
        assert_eq!(details["binding_id"], format!("b-{i}"), "record {}", r.seq);
        assert_eq!(details["reason"], format!("reason {i}"), "record {}", r.seq);
    }
    let head = db.store.audit_head().await.unwrap();
    assert_eq!(head, head_in_tx);
    assert_eq!(verify_chain(&records, (head.0, &head.1)), Ok(()));
}

async fn audit_events_are_append_only(db: &Db) {
    db.import(&[sample(0, "KS-ST-0001")], T0).await;
    let before = db.audit_all().await;
    for sql in [
        "UPDATE audit_events SET actor = 'mallory' WHERE seq = 1",
        "UPDATE audit_events SET details = '{}'",
        "DELETE FROM audit_events WHERE seq = 1",
        "DELETE FROM audit_events",
    ] {
        let err = db.raw(sql).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    if db.store.backend() == Backend::Postgres {
        // Row triggers do not fire on TRUNCATE; a statement trigger must refuse it too.
        let err = db.raw("TRUNCATE audit_events").await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "TRUNCATE: {err}");
    }
    let after = db.audit_all().await;
    assert_eq!(before, after);
    assert_eq!(db.chain_actions().await, ["order.imported"]);
}

async fn failed_batch_rolls_back_completely(db: &Db) {
    // The second order of the batch collides with the first: nothing of the batch may remain,
    // not the first order, its attachments, its blobs, nor its audit record.
    let batch = [sample(0, "KS-ST-0001"), sample(2, "KS-ST-0001")];
    let err = db
        .store
        .insert_orders(&batch, &operator("intake"), T0)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::DuplicateOrder(_)), "{err:?}");
    for table in ["orders", "attachments", "blobs", "audit_events"] {
        assert_eq!(db.count(table).await, 0, "{table}");
    }
    assert_eq!(
        db.store.audit_head().await.unwrap(),
        (0, GENESIS_HASH.to_string())
    );

    // A transaction dropped without commit (an error path returning early) leaves nothing.
    let mut tx = db.store.begin_write(T0).await.unwrap();
    tx.audit(
        &operator("carol"),
        AuditEntry::order(
            &order_no("KS-ST-0001"),
            AuditEvent::TokenReleased(TokenReleased {
                binding_id: "b-1".into(),
                reason: "dropped".into(),
            }),
        ),
    )
    .await
    .unwrap();
    drop(tx);
    assert_eq!(db.count("audit_events").await, 0);

    // And the store is usable afterwards.
    db.import(&batch[..1], T0).await;
    assert_eq!(db.chain_actions().await, ["order.imported"]);
}

async fn orders_without_audit_records_are_found(db: &Db) {
    db.import(&[sample(0, "KS-ST-0001"), sample(1, "KS-ST-0002")], T0)
        .await;
    assert!(db.store.orders_without_audit().await.unwrap().is_empty());
    // Someone with the database drops the append-only guard and removes one order's history.
    db.raw(match db.store.backend() {
        Backend::Sqlite => "DROP TRIGGER audit_events_append_only_delete",
        Backend::Postgres => "DROP TRIGGER audit_events_append_only ON audit_events",
    })
    .await
    .unwrap();
    db.raw("DELETE FROM audit_events WHERE order_no = 'KS-ST-0002'")
        .await
        .unwrap();
    assert_eq!(
        db.store.orders_without_audit().await.unwrap(),
        ["KS-ST-0002"]
    );
}

async fn anchors_are_read_and_written_under_the_audit_head(db: &Db) {
    db.two_orders_first_approved().await;
    assert_eq!(db.store.latest_anchor().await.unwrap(), None);
    let head = db.store.audit_head().await.unwrap();
    let mut tx = db.store.begin_write(T0).await.unwrap();
    assert_eq!(tx.audit_head(), head);
    let tail = tx.audit_records_from(2).await.unwrap();
    assert_eq!(tail.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(tail.last().unwrap().hash, head.1);
    assert_eq!(tx.anchor_at(head.0).await.unwrap(), None);
    let anchor = keystation::audit::Anchor {
        seq: head.0,
        head_hash: head.1.clone(),
        at: "2026-11-24T02:00:00.000000Z".into(),
        actor: "station:test".into(),
        signature: "3045".into(),
    };
    tx.insert_anchor(&anchor).await.unwrap();
    // A second anchor of the same record (another station, a retried run) is ignored.
    tx.insert_anchor(&keystation::audit::Anchor {
        signature: "3046".into(),
        ..anchor.clone()
    })
    .await
    .unwrap();
    assert_eq!(tx.anchor_at(head.0).await.unwrap(), Some(anchor.clone()));
    tx.commit().await.unwrap();
    assert_eq!(
        db.store.latest_anchor().await.unwrap(),
        Some(anchor.clone())
    );
    assert_eq!(db.store.anchors().await.unwrap(), [anchor]);
}

fn holder(name: &str) -> LeaseHolder {
    LeaseHolder {
        station_id: "station-01".into(),
        instance_id: format!("instance-{name}"),
        host: format!("desk-{name}:boot:pid:[1]"),
        pid: 4242,
        process_start: "1".into(),
    }
}

/// `lease_id` of `who` takes the lease on order KS-LEASE at `at` (30 s), the holder judged `seen`.
async fn take(
    store: &Store,
    who: &LeaseHolder,
    lease_id: &str,
    at: OffsetDateTime,
    seen: Liveness,
) -> Result<LeaseTaken, StoreError> {
    let mut tx = store.begin_write(at).await?;
    let want = LeaseRequest {
        kind: LeaseKind::Provision,
        subject: "KS-LEASE",
        lease_id,
        holder: who,
        ttl: time::Duration::seconds(30),
    };
    let taken = tx.take_lease(&want, &move |_: &LeaseHolder| seen).await?;
    tx.commit().await?;
    Ok(taken)
}

async fn renew(store: &Store, lease_id: &str, at: OffsetDateTime) -> Result<(), StoreError> {
    let mut tx = store.begin_write(at).await?;
    tx.renew_lease(
        LeaseKind::Provision,
        "KS-LEASE",
        lease_id,
        time::Duration::seconds(30),
    )
    .await?;
    tx.commit().await
}

/// True when `lease_id` held the lease, now released.
async fn release(store: &Store, lease_id: &str, at: OffsetDateTime) -> bool {
    let mut tx = store.begin_write(at).await.unwrap();
    let released = tx
        .release_lease(LeaseKind::Provision, "KS-LEASE", lease_id)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    released
}

async fn a_lease_holds_until_it_expires_or_its_holder_is_gone(db: &Db) {
    // Seconds after T0.
    let at = |secs: i64| T0 + time::Duration::seconds(secs);
    let (a, b) = (holder("a"), holder("b"));
    let s = &db.store;
    let taken = take(s, &a, "job-a", T0, Liveness::Unknown).await.unwrap();
    assert_eq!(taken.decision, LeaseDecision::Take);
    // Another process, while the holder may run: refused, naming the holder.
    let err = take(s, &b, "job-b", at(10), Liveness::Unknown)
        .await
        .unwrap_err();
    match &err {
        StoreError::LeaseHeld {
            subject, holder, ..
        } => {
            assert_eq!(subject, "KS-LEASE");
            assert!(holder.contains("pid 4242 on desk-a"), "{holder}");
        }
        other => panic!("{other:?}"),
    }
    // Renewed at +10 s, it holds to +40 s: still refused at +35 s.
    renew(s, "job-a", at(10)).await.unwrap();
    let err = take(s, &b, "job-b", at(35), Liveness::Alive).await;
    assert!(matches!(err, Err(StoreError::LeaseHeld { .. })), "{err:?}");
    // The same job asking again keeps it.
    let kept = take(s, &a, "job-a", at(36), Liveness::Alive).await.unwrap();
    assert_eq!(kept.decision, LeaseDecision::Keep);
    // Its holder known gone: taken over before the expiry, the previous holder named.
    let over = take(s, &b, "job-b", at(37), Liveness::Gone).await.unwrap();
    assert_eq!(
        over.decision,
        LeaseDecision::TakeOver(TakeoverReason::HolderGone)
    );
    assert_eq!(over.previous.unwrap().holder, a);
    // The old job is fenced off: its renewal fails, its release changes nothing.
    let lost = renew(s, "job-a", at(38)).await;
    assert!(
        matches!(lost, Err(StoreError::LeaseLost { .. })),
        "{lost:?}"
    );
    assert!(
        !release(s, "job-a", at(38)).await,
        "not job-a's lease any more"
    );
    let now = s
        .lease(LeaseKind::Provision, "KS-LEASE")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((now.lease_id.as_str(), &now.holder), ("job-b", &b));
    assert_eq!(now.expires_at, at(67));
    // Not renewed, it expires: a holder seen running on this host keeps it all the same, one
    // of which nothing is known loses it at that instant.
    let alive = take(s, &a, "job-c", at(90), Liveness::Alive).await;
    assert!(
        matches!(alive, Err(StoreError::LeaseHeld { .. })),
        "{alive:?}"
    );
    let expired = take(s, &a, "job-c", at(67), Liveness::Unknown)
        .await
        .unwrap();
    assert_eq!(
        expired.decision,
        LeaseDecision::TakeOver(TakeoverReason::Expired)
    );
    // Released by its job, the lease is gone.
    assert!(release(s, "job-c", at(68)).await);
    assert_eq!(
        s.lease(LeaseKind::Provision, "KS-LEASE").await.unwrap(),
        None
    );
}

async fn concurrent_lease_takers_exactly_one_wins(db: &Db) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..6 {
        let store = db.another_store().await;
        tasks.spawn(async move {
            let who = holder(&i.to_string());
            take(&store, &who, &format!("job-{i}"), T0, Liveness::Unknown).await
        });
    }
    let mut won = 0;
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(t) => {
                assert_eq!(t.decision, LeaseDecision::Take);
                won += 1;
            }
            Err(StoreError::LeaseHeld { .. }) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(won, 1);
}

/// Certificate `serial` of the first sample order, bound to token `T-1`.
fn certificate(serial: &str, status: CertificateStatus) -> CertificateRecord {
    CertificateRecord {
        serial: cert_serial(serial),
        order_no: order_no("KS-ST-0001"),
        binding_id: "67e55044-10b1-426f-9247-bb680e5fe0c8".parse().unwrap(),
        token_serial: Some("T-1".parse().unwrap()),
        der: vec![0x30, 0x00],
        fingerprint_sha256: "00".into(),
        not_before: "2026-11-24T02:00:00.000000Z".into(),
        not_after: "2027-11-24T15:59:59.000000Z".into(),
        status,
        issued_at: "2026-11-24T02:00:00.000000Z".into(),
        purpose: keystation::domain::CertificatePurpose::Signing,
    }
}

async fn revocations_are_read_back_as_recorded(db: &Db) {
    let cert = certificate("4a0b", "on_token".parse().unwrap());
    db.one_order_with(&[&cert]).await;
    assert_eq!(
        db.store.revocation(&cert_serial("4a0b")).await.unwrap(),
        None
    );
    let mut tx = db.store.begin_write(T0).await.unwrap();
    tx.revoke_certificate(
        &cert_serial("4a0b"),
        &order_no("KS-ST-0001"),
        "keyCompromise",
        "lost key",
        "林芳",
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let r = db
        .store
        .revocation(&cert_serial("4a0b"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.serial.as_str(), r.order_no.as_str(), r.reason.as_str()),
        ("4a0b", "KS-ST-0001", "keyCompromise")
    );
    assert_eq!(r.detail.as_deref(), Some("lost key"));
    assert_eq!(r.revoked_by, "林芳");
    assert_eq!(r.revoked_at, "2026-11-24T02:00:00.000000Z");
    assert_eq!(
        db.store.revocation(&cert_serial("4a0c")).await.unwrap(),
        None
    );
}

async fn an_encryption_certificate_and_its_sealed_escrow_copy_are_read_back(db: &Db) {
    use keystation::domain::CertificatePurpose;
    let signing = certificate("4a10", CertificateStatus::OnToken);
    let encryption = CertificateRecord {
        purpose: CertificatePurpose::Encryption,
        ..certificate("4a11", CertificateStatus::OnToken)
    };
    let sealed = SealedKey(b"KSP1 sealed by the vault".to_vec());
    db.one_order_with(&[&signing, &encryption]).await;
    let mut tx = db.store.begin_write(T0).await.unwrap();
    escrow(&mut tx, "4a11", &sealed).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(db.certificates().await.unwrap(), vec![signing, encryption]);
    let escrowed = db
        .store
        .escrowed_keys(&order_no("KS-ST-0001"))
        .await
        .unwrap();
    assert_eq!(escrowed.len(), 1);
    let e = &escrowed[0];
    assert_eq!(
        (
            e.serial.as_str(),
            e.order_no.as_str(),
            e.public_point.as_str()
        ),
        ("4a11", "KS-ST-0001", "04ab")
    );
    assert_eq!(e.sealed, sealed);
    assert_eq!(e.escrowed_at, "2026-11-24T02:00:00.000000Z");
    // One escrow copy per certificate; none for a certificate that does not exist.
    for serial in ["4a11", "4a12"] {
        let mut tx = db.store.begin_write(T0).await.unwrap();
        assert!(
            escrow(&mut tx, serial, &sealed).await.is_err(),
            "a second or orphan escrow copy of {serial} was accepted"
        );
    }
}

/// Escrows `sealed` (public point `04ab`) for certificate `serial` of KS-ST-0001.
async fn escrow(tx: &mut Tx, serial: &str, sealed: &SealedKey) -> Result<(), StoreError> {
    tx.put_escrowed_key(
        &cert_serial(serial),
        &order_no("KS-ST-0001"),
        "04ab",
        sealed,
    )
    .await
}

/// A revocation request (issue 17) as the station records it: its service request and, beside
/// it, what it revokes; read back inside a transaction and outside; one open request of a kind
/// per order.
async fn revoke_requests_are_read_back_as_recorded(db: &Db) {
    use keystation::domain::{OperatorId, RequestKind, RequestState};
    use keystation::store::{NewServiceRequest, RevokeRequestRecord};
    db.import(&[sample(0, "KS-ST-0001")], T0).await;
    let request = |id: &str, kind| NewServiceRequest {
        id: id.to_string(),
        kind,
        order_no: order_no("KS-ST-0001"),
        requested_by: OperatorId::parse("alice").unwrap(),
        reason: "keyCompromise".into(),
        evidence: "no detail given".into(),
    };
    let whole = RevokeRequestRecord {
        request_id: "r-order".into(),
        cert_serial: None,
        crl_reason: "keyCompromise".into(),
        detail: None,
    };
    let one = RevokeRequestRecord {
        request_id: "r-cert".into(),
        cert_serial: Some(cert_serial("4a0b")),
        crl_reason: "superseded".into(),
        detail: Some("重复签发".into()),
    };
    let mut tx = db.store.begin_write(T0).await.unwrap();
    tx.insert_service_request(&request("r-order", RequestKind::Revoke))
        .await
        .unwrap();
    tx.insert_revoke_request(&whole).await.unwrap();
    tx.insert_service_request(&request("r-cert", RequestKind::RevokeCertificate))
        .await
        .unwrap();
    tx.insert_revoke_request(&one).await.unwrap();
    assert_eq!(tx.revoke_request("r-cert").await.unwrap(), one);
    tx.commit().await.unwrap();

    assert_eq!(
        db.store.revoke_request("r-order").await.unwrap(),
        Some(whole)
    );
    assert_eq!(db.store.revoke_request("r-cert").await.unwrap(), Some(one));
    assert_eq!(db.store.revoke_request("r-none").await.unwrap(), None);
    let stored = db.store.service_request("r-cert").await.unwrap().unwrap();
    assert_eq!(
        (stored.kind, stored.state),
        (RequestKind::RevokeCertificate, RequestState::Requested)
    );

    // A second open revocation of the order is refused, and nothing of it is written.
    let mut tx = db.store.begin_write(T0).await.unwrap();
    let second = tx
        .insert_service_request(&request("r-again", RequestKind::Revoke))
        .await
        .unwrap_err();
    assert!(
        matches!(
            second,
            StoreError::RequestOpen {
                kind: RequestKind::Revoke,
                ..
            }
        ),
        "{second}"
    );
    drop(tx);
    assert_eq!(db.store.service_request("r-again").await.unwrap(), None);
}

async fn an_unknown_stored_status_is_an_error_naming_its_column(db: &Db) {
    db.one_order_with(&[&certificate("4a0d", CertificateStatus::Issued)])
        .await;
    let mut tx = db.store.begin_write(T0).await.unwrap();
    tx.step_started(&order_no("KS-ST-0001"), 1, "init_token")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let read = db.certificates().await.unwrap();
    assert_eq!(read[0].status, CertificateStatus::Issued);
    let (_, journal) = db.store.journal(&order_no("KS-ST-0001")).await.unwrap();
    assert_eq!(journal[0].status, keystation::domain::StepStatus::Started);

    // Written behind the store's back: read, it is refused by name, not taken for another.
    db.raw("UPDATE certificates SET status = 'lost' WHERE serial = '4a0d'")
        .await
        .unwrap();
    db.raw("UPDATE provision_steps SET status = 'half' WHERE order_no = 'KS-ST-0001'")
        .await
        .unwrap();
    refused_by_name(
        db.certificates().await.unwrap_err(),
        "certificates.status",
        "\"lost\"",
    );
    refused_by_name(
        db.store.journal(&order_no("KS-ST-0001")).await.unwrap_err(),
        "provision_steps.status",
        "\"half\"",
    );
}

/// `err` names the column and the value it could not read.
#[track_caller]
fn refused_by_name(err: StoreError, column: &str, value: &str) {
    let err = err.to_string();
    assert!(err.contains(column) && err.contains(value), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Instantiation: every case on both backends.

macro_rules! store_suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(&super::Db::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(&super::Db::postgres().await).await;
                }
            )*
        }
    };
}

store_suite!(
    an_unknown_stored_status_is_an_error_naming_its_column,
    insert_and_read_back_equal,
    send_material_reads_a_group_of_orders_with_their_sealed_pins,
    duplicate_order_is_rejected_and_changes_nothing,
    list_by_state_is_fifo,
    review_changes_state_and_audits_in_one_transaction,
    illegal_transition_is_refused_and_changes_nothing,
    concurrent_approvals_of_one_order_exactly_one_wins,
    attachments_round_trip_with_sha256,
    kept_seal_pictures_round_trip,
    audit_chain_verifies,
    many_records_in_one_transaction_are_chained_in_order,
    audit_events_are_append_only,
    failed_batch_rolls_back_completely,
    orders_without_audit_records_are_found,
    anchors_are_read_and_written_under_the_audit_head,
    a_lease_holds_until_it_expires_or_its_holder_is_gone,
    concurrent_lease_takers_exactly_one_wins,
    revocations_are_read_back_as_recorded,
    an_encryption_certificate_and_its_sealed_escrow_copy_are_read_back,
    revoke_requests_are_read_back_as_recorded,
);

/// The order API's tables (migration 0018), on both backends.
#[path = "store_api.rs"]
mod api;
