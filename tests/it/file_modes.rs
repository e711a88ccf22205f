//! Issue 12, item 6: personal data on disk. The station's files are 0600 and its directories
//! 0700 (the database and its -wal/-shm, the token store, the spool and bank directories,
//! everything it creates but the published CRL, which is public), a looser directory is refused like a loose PIN file, and once a
//! delivery is confirmed no clear PIN is left in the station's own spool or outbound copy.

use crate::delivery::{
    TestStation, bank_order, files_containing, gateway_agent_takes, pain002_file,
    pin_in_spool_file, pins_in_pain001, sms_order,
};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Every file and directory under `dir` (itself included) that group or others may open, with
/// its mode. Symbolic links are reported as such (the station makes none).
fn open_to_others(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        let mode = meta.permissions().mode() & 0o7777;
        if meta.file_type().is_symlink() || mode & 0o077 != 0 {
            found.push((p.clone(), mode));
        }
        if meta.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
    found.sort();
    found
}

/// A station taken through init, intake, provisioning, shipping, SMS and bank delivery with the
/// gateway's receipt and the bank's answer (dropped into the inbound directory by the "bank"
/// with its own, looser mode). Returns the station and the PINs as the gateway and bank got them.
async fn full_cycle() -> (TestStation, Vec<(String, PathBuf)>) {
    let st = TestStation::init().await;
    let sms = st
        .provisioned(sms_order("FM20261124-0001", "13800138000"))
        .await;
    let bank = st.provisioned(bank_order("FM20261124-0002")).await;
    for no in [&sms, &bank] {
        st.ok(&["ship", no, "--tracking", "SF1"]).await;
    }
    st.deliver_once().await;

    // Before confirmation the station's copies hold the PINs: that is the hand-off.
    let agent = st.dir.path().join("agents");
    let spool = st.data_dir().join("spool/sms");
    let outbound = st.files_in("bank/outbound");
    assert_eq!(outbound.len(), 1);
    let banks_copy = agent.join("bank.xml");
    std::fs::create_dir_all(&agent).unwrap();
    std::fs::copy(&outbound[0], &banks_copy).unwrap();
    let taken = gateway_agent_takes(&spool, &agent);
    assert_eq!(taken.len(), 1);
    let pins = vec![
        (pin_in_spool_file(&taken[0]), taken[0].clone()),
        (pins_in_pain001(&banks_copy)[0].clone(), banks_copy),
    ];

    let d = st.delivery(&bank).await;
    let status = pain002_file(
        &st.data_dir().join("bank/inbound"),
        "acsc.xml",
        d["bank_message_id"].as_str().unwrap(),
        &[(d["end_to_end_id"].as_str().unwrap(), "ACSC", None)],
    );
    std::fs::set_permissions(&status, std::fs::Permissions::from_mode(0o644)).unwrap();
    st.ok(&["bank", "import", status.to_str().unwrap()]).await;
    st.deliver_once().await;
    for no in [&sms, &bank] {
        assert_eq!(st.order_state(no).await, "PinDelivered");
    }
    (st, pins)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_station_file_or_directory_is_open_to_group_or_others() {
    let (st, _) = full_cycle().await;
    let data = st.data_dir();
    // What the walk must have seen, so that an empty walk cannot pass.
    for expected in [
        "station.db",
        "station.toml",
        "secrets/station-hsm.pin",
        "tokens",
        "spool/sms",
        "bank/outbound",
        "bank/inbound/processed/acsc.xml",
        "ca/ca.pem",
    ] {
        assert!(data.join(expected).exists(), "{expected} missing");
    }
    // The one exception: the published CRL (public by nature) and its directory.
    let public = data.join("crl");
    for (path, mode) in [(public.clone(), 0o755), (public.join("unit-ca.crl"), 0o644)] {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!(
            meta.permissions().mode() & 0o7777,
            mode,
            "{}",
            path.display()
        );
    }
    let open: Vec<(PathBuf, u32)> = open_to_others(&data)
        .into_iter()
        .filter(|(p, mode)| {
            let is_public = *p == public && *mode == 0o755
                || *p == public.join("unit-ca.crl") && *mode == 0o644;
            !is_public
        })
        .collect();
    assert!(
        open.is_empty(),
        "open to group or others: {:#?}",
        open.iter()
            .map(|(p, m)| format!("{:o} {}", m, p.display()))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_confirmation_no_clear_pin_is_left_in_the_station_copies() {
    let (st, pins) = full_cycle().await;
    for (pin, received) in &pins {
        assert_eq!(pin.len(), 8);
        // The gateway's and the bank's copies have it...
        assert!(
            std::fs::read_to_string(received)
                .unwrap()
                .contains(pin.as_str())
        );
        // ...the station's data directory (spool, outbound, database) does not.
        let left = files_containing(&st.data_dir(), pin.as_bytes(), &[]);
        assert!(left.is_empty(), "PIN still in {left:?}");
    }
    // The spool keeps the gateway's receipt as evidence, the outbound directory nothing.
    let spool: Vec<String> = st
        .files_in("spool/sms")
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(spool.len(), 1, "{spool:?}");
    assert!(spool[0].ends_with(".sent"), "{spool:?}");
    assert!(st.files_in("bank/outbound").is_empty());
    st.ok(&["check"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loose_data_pin_or_delivery_directory_is_refused() {
    let st = TestStation::init().await;
    let data = st.data_dir();
    let chmod = |p: &Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    st.ok(&["order", "list"]).await;

    std::fs::create_dir_all(data.join("spool/sms")).unwrap();
    chmod(&data.join("spool/sms"), 0o700);
    for (dir, args, says) in [
        // The data directory, as `init` made it, then opened up.
        (
            data.clone(),
            &["order", "list"][..],
            &["data directory", "mode 755", "chmod 700"][..],
        ),
        // The station PIN file's directory (the PIN file itself is 0600).
        (data.join("secrets"), &["check"], &["secrets", "chmod 700"]),
        // A spool directory others may open is refused before anything is written into it.
        (
            data.join("spool/sms"),
            &["deliver", "run", "--once"],
            &["delivery directory", "spool"],
        ),
    ] {
        chmod(&dir, 0o755);
        let out = st.run(args).await;
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        for said in says {
            assert!(err.contains(said), "{args:?}: {err}");
        }
        chmod(&dir, 0o700);
    }
    st.ok(&["deliver", "run", "--once"]).await;
}
