//! Randomness is a parameter of the station: provisioning draws the user PIN, the key id and the
//! certificate serial from the source it is given (`Station::with_random`), and from nothing
//! else. A seeded source replayed by hand predicts all three, read back from the token, the
//! database and the vault.

use crate::station::{TestStation, child_station, open_station, order_json, unseal_pins};
use keystation::ca::issuance::serial_from_random;
use keystation::domain::Pin;
use keystation::random::{Random, SeededRandom};
use keystation::station::provision::{ProvisionRequest, Silent};
use std::sync::Arc;

const SEED: u64 = 0x6b65_7973;

#[test]
fn provisioning_draws_pin_key_id_and_serial_from_the_injected_source() {
    let Some(dir) = child_station() else {
        let st = TestStation::new();
        st.import_approved(&order_json("RND-1", "legal_rep_phone", "none", "main"));
        return st.run_child(
            "random_source::provisioning_draws_pin_key_id_and_serial_from_the_injected_source",
            &[],
        );
    };
    let (rt, station, hsm) = open_station(&dir);
    let station = station.with_random(Arc::new(SeededRandom::new(SEED)));
    let report = rt
        .block_on(station.provision(
            &hsm,
            &ProvisionRequest {
                order_no: "RND-1".parse().unwrap(),
                token: None,
                reinit: false,
            },
            &Silent,
        ))
        .unwrap();

    // The same draws, in the job's order: the user PIN (init_pin), the key id (generate_key),
    // the certificate serial (issue_certificate).
    let replay: &dyn Random = &SeededRandom::new(SEED);
    let pin = Pin::generate(&station.config().pin, &mut replay.rng());
    let key_id = hex::encode(replay.bytes::<16>().unwrap());
    let serial = hex::encode(serial_from_random(replay.bytes::<16>().unwrap()));

    let details = rt
        .block_on(station.order_details(&"RND-1".parse().unwrap()))
        .unwrap();
    let binding = details.token.unwrap();
    assert_eq!(
        binding.key_id.as_deref(),
        Some(key_id.as_str()),
        "{report:?}"
    );
    assert!(
        details.certificates.iter().any(|c| c.serial == serial),
        "no certificate with serial {serial}: {:?}",
        details.certificates
    );
    drop((hsm, station, rt));
    let (user_pin, _) = unseal_pins(&dir, "RND-1");
    assert_eq!(user_pin, pin.expose_secret());
}
