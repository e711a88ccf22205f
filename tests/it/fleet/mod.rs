//! Issue 14: several stations, one queue. An installation on a fresh PostgreSQL database of the
//! test server ([`crate::pg`]): desk 1 creates it (`init`), the other desks join it with its
//! station PIN and its HSM — one SoftHSM store, desk 1's, as the stations of a real installation
//! reach one network HSM. Every desk runs the real binary.
//!
//! - `join`: a second `init` joins and changes none of the installation's material;
//! - `queue`: two claims at once pick two different orders (`FOR UPDATE SKIP LOCKED`);
//! - `takeover`: a killed station's order, taken over on its key or, the key out of reach, on a
//!   new one;
//! - `senders`: a delivery another station is sending is never taken for one in doubt;
//! - `demo`: the fleet demo, two stations;
//! - `three_stations`: three desks provisioning and delivering one queue at once, one killed.

mod demo;
mod join;
mod queue;
mod senders;
mod takeover;
mod three_stations;

use crate::pg::PgDatabase;
use crate::support::{keystation, run_ok, stdout_json};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// One desk of the installation: its directory and its id.
pub struct Desk {
    pub id: String,
    pub dir: PathBuf,
}

impl Desk {
    pub fn config(&self) -> PathBuf {
        self.dir.join("station.toml")
    }

    /// `keystation --config <desk> ARGS`, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        crate::support::operator_command(&self.config(), args)
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// A command with `--json` that must succeed, parsed.
    #[track_caller]
    pub fn json(&self, args: &[&str]) -> Value {
        let mut with_json = vec!["--json"];
        with_json.extend_from_slice(args);
        let mut cmd = self.command(&with_json);
        stdout_json(&run_ok(&mut cmd))
    }

    /// A revocation as four-eyes makes it: `args` (`order revoke ...`, naming `--operator`)
    /// requests it and [`crate::support::SECOND_OFFICER`] approves it; returns what it revoked.
    #[track_caller]
    pub fn revoke(&self, args: &[&str]) -> Value {
        crate::support::revoked_by_four_eyes(|a| self.json(a), args)
    }

    /// The desk's station, opened in this process (for what a test does in bulk: approving
    /// hundreds of orders).
    pub fn open(&self) -> (tokio::runtime::Runtime, keystation::station::Station) {
        let rt = crate::support::runtime();
        let cfg = keystation::config::Config::load(&self.config()).unwrap();
        let station = rt
            .block_on(keystation::station::Station::open(
                cfg,
                std::sync::Arc::new(keystation::clock::SystemClock),
            ))
            .unwrap();
        (rt, station)
    }

    /// Edits `station.toml`: the first line setting `key` gets `value` (TOML text).
    pub fn set(&self, key: &str, value: &str) {
        let text = std::fs::read_to_string(self.config()).unwrap();
        let prefix = format!("{key} =");
        let mut done = false;
        let edited: Vec<String> = text
            .lines()
            .map(|l| {
                if !done && l.starts_with(&prefix) {
                    done = true;
                    format!("{key} = {value}")
                } else {
                    l.to_string()
                }
            })
            .collect();
        assert!(done, "{key} not in {}", self.config().display());
        std::fs::write(self.config(), edited.join("\n") + "\n").unwrap();
    }
}

/// An installation: its database, its desks, and the directories its desks share.
pub struct Fleet {
    pub db: PgDatabase,
    tmp: tempfile::TempDir,
    pub desks: Vec<Desk>,
}

impl Fleet {
    /// Desk 1 creates the installation; desks 2..=n join it.
    pub fn new(n: usize) -> Fleet {
        let db = PgDatabase::create_blocking();
        let tmp = tempfile::tempdir().unwrap();
        let mut fleet = Fleet {
            db,
            tmp,
            desks: Vec::new(),
        };
        let first = fleet.tmp.path().join("desk-1");
        run_ok(
            keystation()
                .args(["init", "--generate-pins", "--station-id", "desk-1"])
                .arg("--dir")
                .arg(&first)
                .args(["--database-url", &fleet.db.url]),
        );
        crate::support::map_os_user_to_desk(&first.join("station.toml"));
        fleet.desks.push(Desk {
            id: "desk-1".into(),
            dir: first,
        });
        for i in 2..=n {
            let id = format!("desk-{i}");
            run_ok(&mut fleet.join_command(&id));
            let dir = fleet.tmp.path().join(&id);
            // The installation's operators are every desk's: so is its admin credential.
            std::os::unix::fs::symlink(
                crate::support::admin_credential(&fleet.desks[0].config()),
                crate::support::admin_credential(&dir.join("station.toml")),
            )
            .unwrap();
            crate::support::map_os_user_to_desk(&dir.join("station.toml"));
            fleet.desks.push(Desk { id, dir });
        }
        fleet
    }

    pub fn tmp(&self) -> &Path {
        self.tmp.path()
    }

    pub fn desk(&self, i: usize) -> &Desk {
        &self.desks[i - 1]
    }

    /// `init` of a new desk `id` joining the installation, with its station PIN and desk 1's
    /// SoftHSM store (the shared HSM).
    pub fn join_command(&self, id: &str) -> Command {
        let hsm = self.tmp.path().join("desk-1/softhsm2.conf");
        self.join_command_at(id, id, &hsm)
    }

    /// `init` of a desk `id` in the directory `dir` (under the fleet's), reaching the HSM of
    /// the SoftHSM configuration `hsm`.
    pub fn join_command_at(&self, id: &str, dir: &str, hsm: &Path) -> Command {
        let first = self.tmp.path().join("desk-1");
        let mut c = keystation();
        c.arg("init")
            .arg("--dir")
            .arg(self.tmp.path().join(dir))
            .args(["--station-id", id, "--database-url", &self.db.url])
            .arg("--pin-file")
            .arg(first.join("secrets/station-hsm.pin"))
            .arg("--softhsm2-conf")
            .arg(hsm);
        c
    }

    /// Where the desks' channels meet their agents: one spool and one bank exchange for the
    /// installation, as a gateway agent and the bank's agent watch one place.
    pub fn shared(&self) -> PathBuf {
        self.tmp.path().join("shared")
    }

    /// Every desk sends into the shared channel directories, queues each PIN as its order is
    /// provisioned, and polls every second.
    pub fn share_channels(&self) {
        let shared = self.shared();
        for dir in ["spool/sms", "bank/outbound", "bank/inbound"] {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(shared.join(dir))
                .unwrap();
        }
        for d in &self.desks {
            for (key, dir) in [
                ("spool_dir", "spool/sms"),
                ("outbound_dir", "bank/outbound"),
                ("inbound_dir", "bank/inbound"),
            ] {
                d.set(
                    key,
                    &format!("{:?}", shared.join(dir).display().to_string()),
                );
            }
            d.set("trigger", "\"on_provisioned\"");
            d.set("poll_interval_secs", "1");
        }
    }

    /// Rows of `sql` on the installation's database, each column as text (NULL as "").
    pub fn sql(&self, sql: &str) -> Vec<Vec<String>> {
        use sqlx::{Connection, Row};
        crate::support::runtime().block_on(async {
            let mut conn = sqlx::PgConnection::connect(&self.db.url).await.unwrap();
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                .fetch_all(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
            rows.iter()
                .map(|r| {
                    (0..r.columns().len())
                        .map(|i| {
                            r.try_get::<Option<String>, _>(i)
                                .ok()
                                .flatten()
                                .or_else(|| {
                                    r.try_get::<Option<i64>, _>(i)
                                        .ok()
                                        .flatten()
                                        .map(|n| n.to_string())
                                })
                                .unwrap_or_default()
                        })
                        .collect()
                })
                .collect()
        })
    }

    /// The installation's material rows, as the database holds them.
    pub fn material(&self) -> Vec<Vec<String>> {
        self.sql("SELECT name, value FROM station_material ORDER BY name")
    }

    /// Imports `n` generated orders at desk 1 and approves them; returns their numbers.
    pub fn approved_orders(&self, n: usize) -> Vec<String> {
        let apps = self.tmp.path().join("applications");
        std::fs::create_dir_all(&apps).unwrap();
        keystation::station::demo::write_fixture_pictures(&apps).unwrap();
        let file = keystation::station::demo::generated_orders(&apps, n).unwrap();
        let desk = self.desk(1);
        let imported = desk.json(&[
            "order",
            "import",
            file.to_str().unwrap(),
            "--operator",
            "intake",
        ]);
        let numbers: Vec<String> = imported["imported"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(numbers.len(), n, "{imported}");
        // The station in this process approves as a registered reviewer, by its credential.
        let credential = crate::support::operator_credential(&desk.config(), "reviewer");
        let (rt, station) = desk.open();
        let station = station.with_credential(credential);
        for no in &numbers {
            let no: keystation::domain::OrderNo = no.parse().unwrap();
            rt.block_on(station.approve_order(&no, "reviewer", None))
                .unwrap();
        }
        rt.block_on(station.close());
        numbers
    }
}

/// The serial's SoftHSM token directory in `tokens` (its `token.object` names the serial).
pub fn softhsm_token_dir(tokens: &Path, serial: &str) -> PathBuf {
    std::fs::read_dir(tokens)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            std::fs::read(p.join("token.object"))
                .is_ok_and(|b| b.windows(serial.len()).any(|w| w == serial.as_bytes()))
        })
        .unwrap_or_else(|| panic!("no SoftHSM token {serial} in {}", tokens.display()))
}

/// Sends `signal` (`-KILL`, `-INT`) to the process `pid`.
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

/// The JSON details of an audit record.
pub fn details(record: &Value) -> Value {
    serde_json::from_str(record["details"].as_str().unwrap()).unwrap()
}

/// `check --json` at `desk` passes (exit 0) and reports no violation; returns the report.
#[track_caller]
pub fn check_passes(desk: &Desk) -> Value {
    let out = desk.run(&["--json", "check"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let violations: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["level"]
                .as_str()
                .is_some_and(|l| l.eq_ignore_ascii_case("violation"))
        })
        .collect();
    assert!(out.status.success() && violations.is_empty(), "{report:#}");
    report
}
