//! Issue 7: the audit trail is tamper-evident. One changed byte is found and named; a forger who
//! re-hashes the chain is caught by the HSM-signed anchors; deleted and re-ordered records are
//! found; the append-only triggers refuse ordinary edits.
//!
//! Issue 12: the latest anchor is also held by the vault HSM, so cutting the last records
//! together with their signed anchors and fixing `audit_head` is found and named (on SQLite and
//! PostgreSQL); every signed anchor is checked at its own record; every command that changes
//! state anchors; an anchoring interrupted between the vault and the database is neither a false
//! break nor a gap; `check` flags an order whose history is gone from the trail.

use crate::pg::PgDatabase;
use crate::station::{TestStation, order_json};
use crate::support::items;
use serde_json::Value;
use sqlx::Connection;

/// Someone with the database (the SQLite file, or the PostgreSQL owner's connection): the
/// append-only triggers are no obstacle to them.
pub(crate) struct Attacker {
    rt: tokio::runtime::Runtime,
    conn: sqlx::AnyConnection,
    postgres: bool,
}

impl Attacker {
    fn of(st: &TestStation) -> Attacker {
        Attacker::at(&st.config())
    }

    /// The database of the station whose configuration is `config`.
    pub(crate) fn at(config: &std::path::Path) -> Attacker {
        let url = keystation::config::Config::load(config)
            .unwrap()
            .database_url();
        sqlx::any::install_default_drivers();
        let rt = crate::support::runtime();
        let conn = rt.block_on(sqlx::AnyConnection::connect(&url)).unwrap();
        Attacker {
            rt,
            conn,
            postgres: url.starts_with("postgres"),
        }
    }

    pub(crate) fn exec(&mut self, sql: &str) {
        self.rt
            .block_on(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(&mut self.conn))
            .unwrap();
    }

    fn try_exec(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        self.rt
            .block_on(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(&mut self.conn))
            .map(|_| ())
    }

    pub(crate) fn drop_append_only_guards(&mut self) {
        if self.postgres {
            self.exec(
                "DROP TRIGGER audit_events_append_only ON audit_events; \
                 DROP TRIGGER audit_events_no_truncate ON audit_events;",
            );
        } else {
            self.exec(
                "DROP TRIGGER audit_events_append_only_update; \
                 DROP TRIGGER audit_events_append_only_delete;",
            );
        }
    }

    fn seqs(&mut self, table: &str) -> Vec<i64> {
        self.rt
            .block_on(
                sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(format!(
                    "SELECT seq FROM {table} ORDER BY seq"
                )))
                .fetch_all(&mut self.conn),
            )
            .unwrap()
            .into_iter()
            .map(|(s,)| s)
            .collect()
    }

    /// Cuts every record after `keep` and the signed anchors after it, and sets `audit_head` to
    /// record `keep`: the trail the database then holds is consistent in itself.
    fn truncate_after(&mut self, keep: i64) {
        self.drop_append_only_guards();
        self.exec(&format!(
            "DELETE FROM audit_events WHERE seq > {keep}; \
             DELETE FROM audit_anchors WHERE seq > {keep}; \
             UPDATE audit_head SET seq = {keep}, \
               hash = (SELECT hash FROM audit_events WHERE seq = {keep}) WHERE id = 1;"
        ));
    }
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

fn verify_json(st: &TestStation) -> Value {
    st.json(&["audit", "verify"])
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
    let mut db = Attacker::of(&st);
    let r = db.try_exec("UPDATE audit_events SET actor = 'x' WHERE seq = 3");
    assert!(r.unwrap_err().to_string().contains("append-only"));
    let r = db.try_exec("DELETE FROM audit_events WHERE seq = 3");
    assert!(r.unwrap_err().to_string().contains("append-only"));
}

/// `verify` on a station with history after `sql` ran with the append-only guards dropped.
fn verify_after_edit(sql: &str) -> (bool, String) {
    let st = station_with_history();
    let mut db = Attacker::of(&st);
    db.drop_append_only_guards();
    db.exec(sql);
    verify(&st)
}

#[test]
fn one_changed_byte_is_found_and_named() {
    // One byte of record 5: a character of its action name.
    let (ok, text) = verify_after_edit(
        "UPDATE audit_events SET action = 'X' || substr(action, 2) WHERE seq = 5",
    );
    assert!(!ok, "tampering went unnoticed: {text}");
    assert!(text.contains("audit record 5 was altered"), "{text}");
}

/// Edits record `seq` and re-hashes every record after it and the head, as a forger who knows
/// the chain rules would: the chain is consistent in itself afterwards.
fn rewrite_and_rehash(st: &TestStation, db: &mut Attacker, seq: i64) {
    db.drop_append_only_guards();
    let records = {
        let cfg = keystation::config::Config::load(&st.config()).unwrap();
        let store = db
            .rt
            .block_on(keystation::store::Store::connect(&cfg.database_url()))
            .unwrap();
        let recs = db
            .rt
            .block_on(store.audit_records(&Default::default()))
            .unwrap();
        db.rt.block_on(store.close());
        recs
    };
    let mut prev = keystation::audit::GENESIS_HASH.to_string();
    for mut r in records {
        if r.seq == seq {
            r.actor = "mallory".into();
        }
        r.prev_hash = prev.clone();
        r.hash = r.compute_hash();
        db.rt
            .block_on(
                sqlx::query(
                    "UPDATE audit_events SET actor = $1, prev_hash = $2, hash = $3 WHERE seq = $4",
                )
                .bind(&r.actor)
                .bind(&r.prev_hash)
                .bind(&r.hash)
                .bind(r.seq)
                .execute(&mut db.conn),
            )
            .unwrap();
        prev = r.hash.clone();
    }
    db.rt
        .block_on(
            sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
                .bind(&prev)
                .execute(&mut db.conn),
        )
        .unwrap();
}

#[test]
fn a_rehashed_forgery_is_caught_by_the_signed_anchor() {
    let st = station_with_history();
    let mut db = Attacker::of(&st);
    rewrite_and_rehash(&st, &mut db, 4);
    let (ok, text) = verify(&st);
    assert!(!ok, "a re-hashed forgery went unnoticed: {text}");
    assert!(
        text.contains("no longer matches its signed anchor"),
        "{text}"
    );
}

#[test]
fn deleted_and_reordered_records_are_found() {
    let (ok, text) = verify_after_edit("DELETE FROM audit_events WHERE seq = 7");
    assert!(!ok);
    assert!(
        text.contains("expected 7") && text.contains("deleted or re-ordered"),
        "{text}"
    );

    let (ok, text) = verify_after_edit(
        "UPDATE audit_events SET seq = -1 WHERE seq = 8; UPDATE audit_events SET seq = 8 WHERE seq = 9; UPDATE audit_events SET seq = 9 WHERE seq = -1;",
    );
    assert!(!ok);
    assert!(
        text.contains("record 8") || text.contains("record 9"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// Issue 12: the anchor the vault holds.

/// Two orders imported and approved: four commands, each anchored at its end.
fn station_with_reviews(extra: &[&str]) -> TestStation {
    let st = TestStation::with_args(extra);
    for no in ["TR-1", "TR-2"] {
        st.import_approved(&order_json(no, "legal_rep_phone", "company", "main"));
    }
    st
}

/// The attack: the last records cut together with their signed anchors, `audit_head` fixed.
/// On the station before the vault held an anchor, `audit verify` said "intact" and `audit
/// anchor` signed the forged head.
fn truncation_is_found_and_named(st: &TestStation) {
    let before = verify_json(st);
    let last = before["head_seq"].as_i64().unwrap();
    assert_eq!(before["hsm_anchor"]["seq"].as_i64(), Some(last), "{before}");
    let keep = last - 3;
    let mut db = Attacker::of(st);
    db.truncate_after(keep);
    assert_eq!(db.seqs("audit_events").last(), Some(&keep));
    assert!(db.seqs("audit_anchors").iter().all(|&s| s <= keep));

    let (ok, text) = verify(st);
    assert!(!ok, "a truncated trail passed: {text}");
    assert!(
        text.contains("truncated")
            && text.contains(&format!("records {} to {last} are missing", keep + 1))
            && text.contains(&format!("chain ends at record {keep}")),
        "{text}"
    );
    let json = st.run(&["--json", "audit", "verify"], &[]);
    assert_eq!(json.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["ok"], false, "{v}");

    // The forged head is not signed, neither on request nor after the next state change.
    let out = st.run(&["audit", "anchor"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to anchor") && err.contains("truncated"),
        "{err}"
    );
    let file = st.write_order(&order_json("TR-3", "legal_rep_phone", "company", "main"));
    let out = st.run(&["order", "import", file.to_str().unwrap()], &[]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("could not be anchored") && err.contains("truncated"),
        "{err}"
    );
    assert!(db.seqs("audit_anchors").iter().all(|&s| s <= keep));
    let (ok, text) = verify(st);
    assert!(!ok && text.contains("truncated"), "{text}");
}

#[test]
fn truncation_with_anchors_deleted_and_head_fixed_is_found_sqlite() {
    truncation_is_found_and_named(&station_with_reviews(&[]));
}

#[test]
fn truncation_with_anchors_deleted_and_head_fixed_is_found_postgres() {
    let pg = PgDatabase::create_blocking();
    truncation_is_found_and_named(&station_with_reviews(&["--database-url", &pg.url]));
}

#[test]
fn every_signed_anchor_is_checked_at_its_record_and_the_vault_catches_a_purge() {
    let st = station_with_history();
    let mut db = Attacker::of(&st);
    let anchors = db.seqs("audit_anchors");
    let rewritten = 3;
    let first_hit = *anchors.iter().find(|&&s| s >= rewritten).unwrap();
    let latest = *anchors.last().unwrap();
    assert!(first_hit < latest, "anchors {anchors:?}");
    rewrite_and_rehash(&st, &mut db, rewritten);
    // Every anchor from `first_hit` on now disagrees; the earliest is named, not only the last.
    let (ok, text) = verify(&st);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!(
            "audit record {first_hit} no longer matches its signed anchor"
        )),
        "{text}"
    );
    // The forger also deletes every signed anchor the rewrite betrays: the vault still knows.
    db.exec(&format!(
        "DELETE FROM audit_anchors WHERE seq >= {rewritten}"
    ));
    let (ok, text) = verify(&st);
    assert!(
        !ok,
        "a rewritten trail with its anchors purged passed: {text}"
    );
    assert!(
        text.contains(&format!(
            "audit record {latest} no longer matches the anchor held by the vault HSM"
        )),
        "{text}"
    );
}

#[test]
fn every_state_change_is_anchored_and_json_anchor_prints_an_object() {
    let st = TestStation::new();
    let v = st.json(&["audit", "anchor"]);
    assert_eq!(v["status"], "nothing_new", "{v}");
    // init's records, anchored by init: operator.added (the first administrator),
    // ca.ocsp_signer_issued, station.initialized, crl.issued (CRL number 1); then the test
    // helpers' desk operator (operator.added), anchored by its `operator add`.
    assert_eq!(v["seq"], 5, "{v}");
    let anchored_at_head = |what: &str| {
        let v = verify_json(&st);
        assert_eq!(v["unanchored_records"], 0, "after {what}: {v}");
        assert_eq!(v["hsm_anchor"]["seq"], v["head_seq"], "after {what}: {v}");
        assert_eq!(v["hsm_anchor"]["head_hash"], v["head"], "after {what}: {v}");
        v["head_seq"].as_i64().unwrap()
    };
    let mut head = anchored_at_head("init");
    for (no, decision) in [("AN-1", "approve"), ("AN-2", "reject")] {
        let file = st.write_order(&order_json(no, "legal_rep_phone", "company", "main"));
        st.ok(&["order", "import", file.to_str().unwrap()]);
        let now = anchored_at_head("order import");
        assert!(now > head);
        head = now;
        let mut args = vec!["order", decision, no, "--operator", "reviewer"];
        if decision == "reject" {
            args.extend(["--reason", "licence expired"]);
        }
        st.ok(&args);
        let now = anchored_at_head(decision);
        assert!(now > head);
        head = now;
    }

    // The vault out of reach for one command (its PIN file refused): the change is committed,
    // the command says it could not anchor, and `audit anchor` anchors it later.
    let pin_file = st.path().join("secrets").join("station-hsm.pin");
    set_mode(&pin_file, 0o644);
    let file = st.write_order(&order_json("AN-3", "legal_rep_phone", "company", "main"));
    let out = st.run(&["order", "import", file.to_str().unwrap()], &[]);
    set_mode(&pin_file, 0o600);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("could not be anchored"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = verify_json(&st);
    assert_eq!(v["unanchored_records"], 1, "{v}");
    let a = st.json(&["audit", "anchor"]);
    assert_eq!(a["status"], "anchored", "{a}");
    assert_eq!(a["seq"], v["head_seq"], "{a}");
    assert_eq!(a["head_hash"], v["head"], "{a}");
    assert!(
        hex::decode(a["signature"].as_str().unwrap()).is_ok_and(|s| s.len() > 60),
        "{a}"
    );
    assert_eq!(verify_json(&st)["unanchored_records"], 0);
    assert_eq!(st.json(&["audit", "anchor"])["status"], "nothing_new");
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A command whose anchoring is cut (SIGABRT) after the vault advanced and before the database
/// recorded the signed anchor.
fn cut_after_vault(st: &TestStation, args: &[&str]) {
    let out = st.run(
        args,
        &[("KEYSTATION_FAILPOINTS", "anchor.after_vault=abort")],
    );
    assert!(!out.status.success(), "the failpoint did not fire");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("failpoint anchor.after_vault reached"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_anchoring_cut_between_vault_and_database_is_no_false_break() {
    let st = TestStation::new();
    let file = st.write_order(&order_json("CUT-1", "legal_rep_phone", "company", "main"));
    cut_after_vault(&st, &["order", "import", file.to_str().unwrap()]);
    let mut db = Attacker::of(&st);
    let head = *db.seqs("audit_events").last().unwrap();
    assert!(!db.seqs("audit_anchors").contains(&head));
    let v = verify_json(&st);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["hsm_anchor"]["seq"], head, "{v}");
    assert_eq!(v["unanchored_records"], 0, "{v}");
    // The next anchoring records the signed anchor the cut run did not.
    let a = st.json(&["audit", "anchor"]);
    assert_eq!(a["status"], "anchored", "{a}");
    assert_eq!(a["seq"], head, "{a}");
    assert!(db.seqs("audit_anchors").contains(&head));
    assert_eq!(verify_json(&st)["ok"], true);
}

#[test]
fn an_anchoring_cut_between_vault_and_database_still_shows_a_truncation() {
    let st = TestStation::new();
    let file = st.write_order(&order_json("CUT-2", "legal_rep_phone", "company", "main"));
    st.ok(&["order", "import", file.to_str().unwrap()]);
    cut_after_vault(
        &st,
        &["order", "approve", "CUT-2", "--operator", "reviewer"],
    );
    // The approval is anchored only in the vault: cutting it leaves no signed anchor to delete.
    let mut db = Attacker::of(&st);
    let head = *db.seqs("audit_events").last().unwrap();
    db.truncate_after(head - 1);
    let (ok, text) = verify(&st);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!("record {head} is missing")),
        "{text}"
    );
}

#[test]
fn check_flags_an_order_without_audit_records() {
    let st = station_with_reviews(&[]);
    st.ok(&["check"]);
    let mut db = Attacker::of(&st);
    db.drop_append_only_guards();
    db.exec("DELETE FROM audit_events WHERE order_no = 'TR-2'");
    let out = st.run(&["--json", "check"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let flagged: Vec<&Value> = items(&report["findings"])
        .iter()
        .filter(|f| f["rule"] == "audit_history_missing")
        .collect();
    assert_eq!(flagged.len(), 1, "{report}");
    assert_eq!(flagged[0]["order_no"], "TR-2");
    assert_eq!(flagged[0]["level"], "violation");
}

/// In a child bound to the station's SoftHSM: the vault's anchor never moves backwards, and the
/// same record with another hash is refused (issue 14's stations share one vault).
#[test]
fn the_vault_anchor_only_moves_forward() {
    let Some(dir) = crate::station::child_station() else {
        let st = station_with_reviews(&[]);
        st.run_child("audit::the_vault_anchor_only_moves_forward", &[]);
        // The station's own anchoring goes on from where the vault is.
        assert_eq!(verify_json(&st)["ok"], true);
        return;
    };
    use keystation::token::HeldAnchor;
    let (rt, _station, hsm) = crate::station::open_station(&dir);
    rt.block_on(async {
        tokio::task::block_in_place(|| {
            let vault = hsm.vault().unwrap();
            let held = vault.held_anchor().unwrap().unwrap();
            assert!(held.seq > 1);
            let older = HeldAnchor {
                seq: held.seq - 1,
                head_hash: "00".repeat(32),
                at: held.at.clone(),
            };
            assert_eq!(vault.advance_held_anchor(&older).unwrap(), held);
            assert_eq!(vault.held_anchor().unwrap(), Some(held.clone()));
            let forked = HeldAnchor {
                head_hash: "11".repeat(32),
                ..held.clone()
            };
            assert!(vault.advance_held_anchor(&forked).is_err());
            assert_eq!(vault.held_anchor().unwrap(), Some(held));
        })
    });
}
