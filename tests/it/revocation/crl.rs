//! Issue 15, items 1 and 3: numbered CRLs, with OpenSSL as the relying party.

use super::{crl_number, lint_errors, published, relying_party, verified_crl_text};
use crate::fleet::Fleet;
use crate::ocsp::certificate_pem;
use crate::station::{TestStation, open_station, order_json};
use crate::support::audit_records;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Imports, approves and provisions `no`; returns its certificate's serial.
fn provisioned(st: &TestStation, no: &str) -> String {
    st.import_approved(&order_json(no, "legal_rep_phone", "company", "main"));
    st.json(&["provision", no])["certificate_serial"]
        .as_str()
        .unwrap()
        .to_string()
}

fn numbers_in_audit(st: &TestStation) -> Vec<i64> {
    let audit = st.json(&["audit", "show"]);
    audit_records(&audit, "crl.issued")
        .iter()
        .map(|r| {
            let d: serde_json::Value =
                serde_json::from_str(r["details"].as_str().unwrap()).unwrap();
            d["number"].as_i64().unwrap()
        })
        .collect()
}

#[test]
fn revocations_reach_relying_parties_through_numbered_crls() {
    let Some(st) = TestStation::unless_child(&[], crl_tick_in_child) else {
        return;
    };
    let ca = st.path().join("ca/ca.pem");
    let file = published(&st.path());

    // init issued CRL number 1, empty, published world-readable at the distribution point's path.
    let text = verified_crl_text(&file, &ca);
    assert_eq!(crl_number(&text), 1, "{text}");
    assert!(text.contains("No Revoked Certificates"), "{text}");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    assert_eq!(lint_errors(&file), Vec::<String>::new());

    let revoked = provisioned(&st, "CRL-1");
    let live = provisioned(&st, "CRL-2");

    // A made-up reason: refused naming the field, nothing revoked, no CRL issued.
    let out = st.run(
        &[
            "order",
            "revoke",
            "CRL-1",
            "--reason",
            "lostIt",
            "--operator",
            "alice",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--reason") && stderr.contains("lostIt"),
        "{stderr}"
    );
    assert_eq!(st.json(&["order", "show", "CRL-1"])["state"], "Provisioned");
    assert_eq!(crl_number(&verified_crl_text(&file, &ca)), 1);

    // keyCompromise, requested by alice: pending, nothing revoked, no CRL issued; alice cannot
    // approve her own request. A second operator's approval commits it, and CRL 2 lists it
    // with its reason at once.
    let request = st.json(&[
        "order",
        "revoke",
        "CRL-1",
        "--reason",
        "keyCompromise",
        "--operator",
        "alice",
    ]);
    assert_eq!(request["state"], "requested", "{request:#}");
    let id = request["id"].as_str().unwrap();
    let own = st.run(&["revoke", "approve", id, "--operator", "alice"], &[]);
    let stderr = String::from_utf8_lossy(&own.stderr);
    assert_eq!(own.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("E-REQUEST-SAME-OPERATOR"), "{stderr}");
    assert_eq!(st.json(&["order", "show", "CRL-1"])["state"], "Provisioned");
    assert_eq!(crl_number(&verified_crl_text(&file, &ca)), 1);
    let approved = st.json(&[
        "revoke",
        "approve",
        id,
        "--operator",
        crate::support::SECOND_OFFICER,
    ]);
    let report = crate::support::revocation_report(&approved);
    assert_eq!(report["four_eyes"]["requested_by"], "alice", "{report:#}");
    assert_eq!(
        report["four_eyes"]["approved_by"],
        crate::support::SECOND_OFFICER
    );
    assert_eq!(report["crl"]["outcome"], "issued", "{report:#}");
    assert_eq!(report["crl"]["number"], 2);
    assert_eq!(report["crl"]["entries"], 1);
    let text = verified_crl_text(&file, &ca);
    assert_eq!(crl_number(&text), 2, "{text}");
    assert!(
        text.contains(&format!("Serial Number: {}", revoked.to_uppercase())),
        "{text}"
    );
    assert!(text.contains("Key Compromise"), "{text}");
    assert!(!text.contains(&live.to_uppercase()), "{text}");
    assert_eq!(lint_errors(&file), Vec::<String>::new());

    // `ca crl` in a new process: number 3, a PEM copy for the relying party.
    let crl_pem = st.tmp().join("crl.pem");
    let issued = st.json(&["ca", "crl", "--out", crl_pem.to_str().unwrap()]);
    assert_eq!(issued["number"], 3, "{issued:#}");
    assert_eq!(issued["entries"], 1);
    assert_eq!(issued["path"], file.to_str().unwrap());
    assert_eq!(crl_number(&verified_crl_text(&file, &ca)), 3);
    let (ok, out) = relying_party(&ca, &crl_pem, &certificate_pem(&st, &live));
    assert!(ok, "a live certificate is accepted: {out}");
    let (ok, out) = relying_party(&ca, &crl_pem, &certificate_pem(&st, &revoked));
    assert!(!ok && out.contains("certificate revoked"), "{out}");

    // The CRL that follows a revocation fails (the CA key cannot be found): the revocation
    // stands, the command says so with the remedy, and exits 1.
    let config = std::fs::read_to_string(st.config()).unwrap();
    std::fs::write(
        st.config(),
        config.replace("key_label = \"issuing-ca\"", "key_label = \"no-such-key\""),
    )
    .unwrap();
    let request = st.json(&[
        "order",
        "revoke",
        "CRL-2",
        "--reason",
        "superseded",
        "--operator",
        "bob",
    ]);
    let id = request["id"].as_str().unwrap();
    let out = st.run(
        &[
            "revoke",
            "approve",
            id,
            "--operator",
            crate::support::SECOND_OFFICER,
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("E-CRL-NOT-ISSUED")
            && stderr.contains("revocation is recorded and stands")
            && stderr.contains("keystation ca crl"),
        "{stderr}"
    );
    std::fs::write(st.config(), config).unwrap();
    let show = st.json(&["order", "show", "CRL-2"]);
    assert_eq!(show["certificates"][0]["status"], "revoked", "{show:#}");
    assert_eq!(crl_number(&verified_crl_text(&file, &ca)), 3);

    // The serving loop's tick (in a child bound to the station's SoftHSM) issues CRL 4 for
    // the revocation no CRL lists, republishes a lost file, and renews in the last quarter.
    st.run_child(
        "revocation::crl::revocations_reach_relying_parties_through_numbered_crls",
        &[],
    );
    let text = verified_crl_text(&file, &ca);
    assert_eq!(crl_number(&text), 5, "{text}");
    assert!(
        text.contains(&live.to_uppercase()) && text.contains("Superseded"),
        "{text}"
    );
    assert_eq!(lint_errors(&file), Vec::<String>::new());

    assert_eq!(numbers_in_audit(&st), vec![1, 2, 3, 4, 5]);
    st.ok(&["audit", "verify"]);
}

/// The child half: `crl_tick` at the station.
fn crl_tick_in_child(dir: &Path) {
    let (rt, station, hsm) = open_station(dir);
    let now = station.now();
    let file = published(dir);

    // A revocation the newest CRL (3) does not list: CRL 4, at once.
    let tick = rt.block_on(station.crl_tick(&hsm, now)).unwrap();
    let (due, report) = tick.issued.expect("a CRL for the unlisted revocation");
    assert_eq!(due, keystation::domain::crl::CrlDue::NewRevocation);
    assert_eq!((report.number, report.entries), (4, 2));

    // Nothing due: nothing issued, nothing written.
    let tick = rt.block_on(station.crl_tick(&hsm, now)).unwrap();
    assert!(
        tick.issued.is_none() && tick.republished.is_none(),
        "{tick:?}"
    );

    // The published file lost: written again from the database, byte for byte.
    std::fs::remove_file(&file).unwrap();
    let tick = rt.block_on(station.crl_tick(&hsm, now)).unwrap();
    assert_eq!(tick.republished.as_deref(), Some(file.as_path()));
    let current = rt.block_on(station.current_crl()).unwrap().unwrap();
    assert_eq!(current.number, 4);
    assert_eq!(std::fs::read(&file).unwrap(), current.der);

    // 24 h validity: with more than a quarter left nothing is due; at the quarter, CRL 5.
    let this = current.this_update;
    let tick = rt
        .block_on(station.crl_tick(&hsm, this + time::Duration::hours(17)))
        .unwrap();
    assert!(tick.issued.is_none(), "{tick:?}");
    let tick = rt
        .block_on(station.crl_tick(&hsm, this + time::Duration::hours(18)))
        .unwrap();
    let (due, report) = tick.issued.expect("a renewal");
    assert_eq!(due, keystation::domain::crl::CrlDue::Renewal);
    assert_eq!(report.number, 5);

    // The history: every CRL, newest first, with the station that issued it.
    let history = rt.block_on(station.crl_history(10)).unwrap();
    let numbers: Vec<(i64, i64)> = history.iter().map(|c| (c.number, c.entries)).collect();
    assert_eq!(numbers, [(5, 2), (4, 2), (3, 1), (2, 1), (1, 0)]);
    assert!(history.iter().all(|c| c.station_id == "station-01"));
}

#[test]
fn crl_numbers_only_grow_across_the_stations_of_one_installation() {
    let fleet = Fleet::new(2);
    let crls = || {
        fleet
            .sql("SELECT number, station_id FROM crls ORDER BY number")
            .into_iter()
            .map(|r| (r[0].parse::<i64>().unwrap(), r[1].clone()))
            .collect::<Vec<_>>()
    };
    // The installation's init issued CRL 1; the joining station none.
    assert_eq!(crls(), vec![(1, "desk-1".to_string())]);
    assert!(!published(&fleet.desk(2).dir).exists());

    assert_eq!(fleet.desk(2).json(&["ca", "crl"])["number"], 2);
    assert_eq!(fleet.desk(1).json(&["ca", "crl"])["number"], 3);

    // Both desks at once, three times each: every number once, none skipped.
    let children: Vec<_> = (0..3)
        .flat_map(|_| [1, 2])
        .map(|d| {
            let mut c = fleet.desk(d).command(&["--json", "ca", "crl"]);
            c.stdout(std::process::Stdio::piped());
            c.stderr(std::process::Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    let mut numbers: Vec<i64> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            crate::support::stdout_json(&out)["number"]
                .as_i64()
                .unwrap()
        })
        .collect();
    numbers.sort();
    assert_eq!(numbers, (4..=9).collect::<Vec<_>>());
    let recorded: Vec<i64> = crls().into_iter().map(|(n, _)| n).collect();
    assert_eq!(recorded, (1..=9).collect::<Vec<_>>());

    // Each desk's published CRL verifies against the installation's CA.
    for d in [1, 2] {
        let dir = &fleet.desk(d).dir;
        let text = verified_crl_text(&published(dir), &dir.join("ca/ca.pem"));
        assert!(crl_number(&text) >= 4, "{text}");
    }
}
