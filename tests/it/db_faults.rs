//! Issue 7: database faults. PostgreSQL going away in the middle of a batch (the batch waits and
//! resumes when it is back) and a busy SQLite database (the station waits and retries).
//!
//! The PostgreSQL test runs its OWN server (initdb in a temp directory, Unix socket only) so that
//! stopping it cannot disturb other tests using the shared local cluster.

use crate::station::{TestStation, keystation, order_json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A private PostgreSQL server for one test.
struct PrivatePg {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    socket: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
}

impl PrivatePg {
    fn start() -> PrivatePg {
        let versions = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries (scripts/setup.sh installs them)");
        let mut v: Vec<PathBuf> = versions.map(|e| e.unwrap().path().join("bin")).collect();
        v.sort();
        let bin = v.pop().expect("a PostgreSQL version");
        let tmp = tempfile::tempdir().unwrap();
        let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
        let data = tmp.path().join("data");
        let socket = tmp.path().join("sock");
        std::fs::create_dir_all(&socket).unwrap();
        if root {
            // initdb refuses to run as root: the server runs as the postgres user.
            for p in [tmp.path(), &socket] {
                let ok = Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(p)
                    .status()
                    .unwrap();
                assert!(ok.success());
            }
        }
        let pg = PrivatePg {
            _tmp: tmp,
            data,
            socket,
            bin,
            as_postgres: root,
        };
        pg.run(
            "initdb",
            &[
                "-D",
                pg.data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        pg.ctl("start");
        pg
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let out = if self.as_postgres {
            let mut cmdline = format!("{}", exe.display());
            for a in args {
                cmdline.push_str(&format!(" '{a}'"));
            }
            Command::new("su")
                .args(["postgres", "-s", "/bin/sh", "-c", &cmdline])
                .output()
                .unwrap()
        } else {
            Command::new(exe).args(args).output().unwrap()
        };
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn ctl(&self, action: &str) {
        let opts = format!("-k {} -c listen_addresses=", self.socket.display());
        let log = self.data.join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-o",
                &opts,
                "-l",
                log.to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                action,
            ],
        );
    }

    fn url(&self) -> String {
        format!(
            "postgres:///postgres?host={}&user=postgres",
            self.socket.display()
        )
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let opts = format!("-k {}", self.socket.display());
        if self.as_postgres {
            let _ = Command::new("su")
                .args([
                    "postgres",
                    "-s",
                    "/bin/sh",
                    "-c",
                    &format!(
                        "{} -D '{}' -o '{opts}' -m immediate stop",
                        self.bin.join("pg_ctl").display(),
                        self.data.display()
                    ),
                ])
                .output();
        } else {
            let _ = Command::new(self.bin.join("pg_ctl"))
                .args(["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"])
                .output();
        }
    }
}

#[test]
fn postgresql_going_away_during_a_batch_is_waited_out() {
    let pg = PrivatePg::start();
    let st = TestStation::with_args(&["--database-url", &pg.url()]);
    let orders: Vec<String> = (1..=4).map(|i| format!("PGR-{i}")).collect();
    for no in &orders {
        st.import_approved(&order_json(no, "legal_rep_phone", "company", "main"));
    }
    // One worker, held for 2 s inside PGR-2's certificate step; meanwhile the server goes down
    // for 4 s. The job meets a dead database when it wakes, and must wait for it.
    let mut child = keystation()
        .arg("--config")
        .arg(st.config())
        .args(["provision", "--all-approved", "--workers", "1", "--json"])
        .env(
            "KEYSTATION_FAILPOINTS",
            "provision.issue_certificate.started@PGR-2=sleep2000",
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            if line.contains("failpoint provision.issue_certificate.started@PGR-2 reached") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("the failpoint was reached");
    pg.ctl("stop");
    std::thread::sleep(Duration::from_secs(4));
    pg.ctl("start");
    let out = child.wait_with_output().unwrap();
    let log = reader.join().unwrap();
    assert!(out.status.success(), "batch failed:\n{log}");
    assert!(
        log.contains("database unavailable; retrying"),
        "the outage was not met: {log}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["ok"].as_array().unwrap().len(), 4, "{summary}");
    for no in &orders {
        assert_eq!(st.json(&["order", "show", no])["state"], "Provisioned");
    }
    st.ok(&["check"]);
    st.ok(&["audit", "verify"]);
}

fn hold_sqlite_lock(db: &Path, for_how_long: Duration) -> std::thread::JoinHandle<()> {
    let url = format!("sqlite://{}", db.display());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        use sqlx::Connection;
        let rt = crate::support::runtime();
        rt.block_on(async {
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::raw_sql("BEGIN EXCLUSIVE")
                .execute(&mut c)
                .await
                .unwrap();
            ready_tx.send(()).unwrap();
            tokio::time::sleep(for_how_long).await;
            sqlx::raw_sql("COMMIT").execute(&mut c).await.unwrap();
        });
    });
    ready_rx.recv().unwrap();
    h
}

#[test]
fn a_busy_sqlite_database_is_waited_for() {
    let st = TestStation::new();
    st.import_approved(&order_json("BUSY-1", "legal_rep_phone", "none", "main"));
    let file = st.write_order(&order_json("BUSY-2", "legal_rep_phone", "none", "main"));
    // Another process holds the database exclusively for 3 s while operators work.
    let holder = hold_sqlite_lock(&st.path().join("station.db"), Duration::from_secs(3));
    let start = Instant::now();
    st.ok(&["order", "import", file.to_str().unwrap()]);
    st.ok(&["provision", "BUSY-1"]);
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "the lock was not in the way"
    );
    holder.join().unwrap();
    assert_eq!(
        st.json(&["order", "show", "BUSY-1"])["state"],
        "Provisioned"
    );
    assert_eq!(st.json(&["order", "show", "BUSY-2"])["state"], "Submitted");
    st.ok(&["audit", "verify"]);
}

/// A tiny tmpfs mounted over a directory (root only), unmounted on drop.
struct TinyFs(PathBuf);

impl TinyFs {
    fn mount(dir: &Path) -> Option<TinyFs> {
        std::fs::create_dir_all(dir).unwrap();
        // mode=0700: the station refuses a spool directory others may open.
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16k,mode=0700", "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| TinyFs(dir.to_path_buf()))
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_spool_disk_leaves_the_delivery_queued() {
    let st = TestStation::new();
    let cfg = std::fs::read_to_string(st.config()).unwrap();
    std::fs::write(
        st.config(),
        cfg.replace("retry_initial_secs = 30", "retry_initial_secs = 1"),
    )
    .unwrap();
    st.import_approved(&order_json("DF-1", "legal_rep_phone", "none", "main"));
    st.ok(&["provision", "DF-1"]);
    st.ok(&["ship", "DF-1", "--tracking", "SF1"]);

    let spool = st.path().join("spool/sms");
    let tiny = TinyFs::mount(&spool);
    let filler = spool.join("filler");
    match &tiny {
        // A real full disk: a 16 KiB filesystem filled to the last byte.
        Some(_) => {
            let _ = std::fs::write(&filler, vec![0u8; 64 * 1024]);
        }
        None => eprintln!("mount not permitted here: the spool cannot be written at all instead"),
    }
    if tiny.is_none() {
        // A private directory nobody can create files in (mode 0500).
        std::fs::remove_dir_all(&spool).unwrap();
        std::os::unix::fs::symlink("/proc/self/fd", &spool).unwrap();
    }
    // Nothing could be sent: exit 1.
    let out = st.run(&["deliver", "run", "--once"], &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = st.json(&["deliver", "status", "--order", "DF-1"]);
    let d = &d.as_array().unwrap()[0];
    assert_eq!(d["state"], "queued", "{d}");
    assert_eq!(d["attempts"], 1);
    if tiny.is_some() {
        let why = d["last_error"].as_str().unwrap_or("");
        assert!(
            why.contains("disk full") || why.contains("No space"),
            "{why}"
        );
    }
    assert_eq!(st.json(&["order", "show", "DF-1"])["state"], "Shipped");
    st.ok(&["check"]); // the sealed PIN is still there, nothing lost

    // Space again: the next pass delivers it.
    match &tiny {
        Some(_) => std::fs::remove_file(&filler).unwrap(),
        None => {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::remove_file(&spool).unwrap();
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&spool)
                .unwrap();
        }
    }
    std::thread::sleep(Duration::from_millis(1500));
    st.ok(&["deliver", "run", "--once"]);
    let taken = crate::delivery::gateway_agent_takes(&spool, &st.tmp().join("gateway-agent"));
    assert_eq!(taken.len(), 1, "exactly one message");
    st.ok(&["deliver", "run", "--once"]);
    assert_eq!(st.json(&["order", "show", "DF-1"])["state"], "PinDelivered");
    drop(tiny);
}
