//! Issue 7: the audit trail is tamper-evident. One changed byte is found and named; a forger who
//! re-hashes the chain is caught by the HSM-signed anchors; deleted and re-ordered records are
//! found; the append-only triggers refuse ordinary edits.

use crate::station::{TestStation, order_json};
use sqlx::SqliteConnection;

fn sqlite(st: &TestStation) -> (tokio::runtime::Runtime, SqliteConnection) {
    st.sqlite()
}

fn exec(rt: &tokio::runtime::Runtime, conn: &mut SqliteConnection, sql: &str) {
    rt.block_on(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(&mut *conn))
        .unwrap();
}

/// The attacker has the database file: the append-only triggers are no obstacle to them.
fn drop_append_only_guards(rt: &tokio::runtime::Runtime, conn: &mut SqliteConnection) {
    exec(
        rt,
        conn,
        "DROP TRIGGER audit_events_append_only_update; DROP TRIGGER audit_events_append_only_delete;",
    );
}

fn verify(st: &TestStation) -> (bool, String) {
    let out = st.run(&["audit", "verify"], &[]);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A station with some history, anchored, and a fresh copy of its database for each attack.
fn station_with_history() -> TestStation {
    let st = TestStation::new();
    for no in ["AU-1", "AU-2"] {
        st.import_approved(&order_json(no, "legal_rep_phone", "company", "main"));
        st.ok(&["provision", no]);
    }
    let (ok, text) = verify(&st);
    assert!(ok, "{text}");
    assert!(text.contains("signed anchors"), "{text}");
    st
}

#[test]
fn append_only_triggers_refuse_edits() {
    let st = station_with_history();
    let (rt, mut conn) = sqlite(&st);
    let r = rt.block_on(
        sqlx::raw_sql("UPDATE audit_events SET actor = 'x' WHERE seq = 3").execute(&mut conn),
    );
    assert!(r.unwrap_err().to_string().contains("append-only"));
    let r = rt.block_on(sqlx::raw_sql("DELETE FROM audit_events WHERE seq = 3").execute(&mut conn));
    assert!(r.unwrap_err().to_string().contains("append-only"));
}

#[test]
fn one_changed_byte_is_found_and_named() {
    let st = station_with_history();
    let (rt, mut conn) = sqlite(&st);
    // The attacker has the database file: triggers are no obstacle.
    drop_append_only_guards(&rt, &mut conn);
    // One byte of record 5: a character of its action name.
    exec(
        &rt,
        &mut conn,
        "UPDATE audit_events SET action = 'X' || substr(action, 2) WHERE seq = 5",
    );
    let (ok, text) = verify(&st);
    assert!(!ok, "tampering went unnoticed: {text}");
    assert!(text.contains("audit record 5 was altered"), "{text}");
}

#[test]
fn a_rehashed_forgery_is_caught_by_the_signed_anchor() {
    let st = station_with_history();
    let (rt, mut conn) = sqlite(&st);
    drop_append_only_guards(&rt, &mut conn);
    // Edit record 4 and recompute every hash after it, and the head: the chain is consistent.
    let rows: Vec<(i64,)> = rt
        .block_on(sqlx::query_as("SELECT seq FROM audit_events ORDER BY seq").fetch_all(&mut conn))
        .unwrap();
    let store_records = {
        let cfg = keystation::config::Config::load(&st.config()).unwrap();
        let store = rt
            .block_on(keystation::store::Store::connect(&cfg.database_url()))
            .unwrap();
        let recs = rt
            .block_on(store.audit_records(&Default::default()))
            .unwrap();
        rt.block_on(store.close());
        recs
    };
    assert_eq!(rows.len(), store_records.len());
    let mut prev = keystation::audit::GENESIS_HASH.to_string();
    for mut r in store_records {
        if r.seq == 4 {
            r.actor = "mallory".into();
        }
        r.prev_hash = prev.clone();
        r.hash = r.compute_hash();
        rt.block_on(
            sqlx::query(
                "UPDATE audit_events SET actor = $1, prev_hash = $2, hash = $3 WHERE seq = $4",
            )
            .bind(&r.actor)
            .bind(&r.prev_hash)
            .bind(&r.hash)
            .bind(r.seq)
            .execute(&mut conn),
        )
        .unwrap();
        prev = r.hash.clone();
    }
    rt.block_on(
        sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
            .bind(&prev)
            .execute(&mut conn),
    )
    .unwrap();
    let (ok, text) = verify(&st);
    assert!(!ok, "a re-hashed forgery went unnoticed: {text}");
    assert!(
        text.contains("no longer matches its signed anchor"),
        "{text}"
    );
}

#[test]
fn deleted_and_reordered_records_are_found() {
    let st = station_with_history();
    let (rt, mut conn) = sqlite(&st);
    drop_append_only_guards(&rt, &mut conn);
    exec(&rt, &mut conn, "DELETE FROM audit_events WHERE seq = 7");
    let (ok, text) = verify(&st);
    assert!(!ok);
    assert!(
        text.contains("expected 7") && text.contains("deleted or re-ordered"),
        "{text}"
    );

    let st = station_with_history();
    let (rt, mut conn) = sqlite(&st);
    drop_append_only_guards(&rt, &mut conn);
    exec(
        &rt,
        &mut conn,
        "UPDATE audit_events SET seq = -1 WHERE seq = 8; UPDATE audit_events SET seq = 8 WHERE seq = 9; UPDATE audit_events SET seq = 9 WHERE seq = -1;",
    );
    let (ok, text) = verify(&st);
    assert!(!ok);
    assert!(
        text.contains("record 8") || text.contains("record 9"),
        "{text}"
    );
}
