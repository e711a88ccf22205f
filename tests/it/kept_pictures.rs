//! Issue 19 item 5: seal pictures are normalised once, at intake, and kept; provisioning seals the
//! kept PNG. The seal is the same whether its picture was kept or is normalised at provisioning
//! (an order imported before pictures were kept), and such an order still provisions.

use crate::station::{TestStation, open_station, order_json};
use keystation::domain::SealKind;
use keystation::seal::{NORMALIZATION_VERSION, normalize_seal_picture, parse_seal};
use keystation::station::seals::build_order_seals;
use keystation::store::{Store, StoredSealPicture};
use serde_json::json;
use std::path::Path;

const KEPT: &str = "KP-1";
const NOT_KEPT: &str = "KP-2";
const SEALS: [&str; 2] = ["seal:company", "seal:legal_rep"];

fn fixture_png(kind: SealKind) -> Vec<u8> {
    let name = match kind {
        SealKind::Company => "company.png",
        SealKind::LegalRep => "legal_rep.jpg",
    };
    let bytes = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/seals")
            .join(name),
    )
    .unwrap();
    normalize_seal_picture(&bytes).unwrap().png
}

#[test]
fn a_seal_is_the_same_from_the_kept_picture_and_from_the_picture_itself() {
    let st = TestStation::new();
    for no in [KEPT, NOT_KEPT] {
        st.import_approved(&order_json(
            no,
            "legal_rep_phone",
            "company_and_legal_rep",
            "main",
        ));
    }
    // Provisioned from the pictures kept at intake.
    let report = st.json(&["provision", KEPT]);
    assert_eq!(report["seals"], json!(SEALS), "{report}");

    // Builds KEPT's seals from the kept pictures, forgets them (as an order imported before
    // pictures were kept), builds again from the pictures themselves, and compares.
    st.run_child("kept_pictures::seals_from_kept_and_from_source_child", &[]);

    // An order without kept pictures provisions, normalising its pictures there.
    let report = st.json(&["provision", NOT_KEPT]);
    assert_eq!(report["seals"], json!(SEALS), "{report}");
    st.ok(&["audit", "verify"]);
}

/// Child half of [`a_seal_is_the_same_from_the_kept_picture_and_from_the_picture_itself`] (does
/// nothing when run on its own).
#[test]
fn seals_from_kept_and_from_source_child() {
    let Some(dir) = crate::station::child_station() else {
        return;
    };
    let (rt, station, hsm) = open_station(&dir);
    let store = rt
        .block_on(Store::connect(&station.config().database_url()))
        .unwrap();
    let order_no = crate::support::order_no(KEPT);
    let details = rt.block_on(station.order_details(&order_no)).unwrap();
    let order = details.record.order;
    let cert = &details.certificates.first().expect("a certificate").der;
    let kinds = [SealKind::Company, SealKind::LegalRep];

    // The intake kept both pictures; they are what the pictures normalise to.
    for kind in kinds {
        let kept = rt
            .block_on(store.seal_picture(&order_no, kind.as_str(), NORMALIZATION_VERSION))
            .unwrap();
        assert_eq!(kept, Some(StoredSealPicture::Normalized(fixture_png(kind))));
    }
    let from_kept = rt
        .block_on(build_order_seals(&station, &hsm, &order, cert))
        .unwrap();
    let pngs_kept = rt.block_on(station.seal_picture_pngs(&order)).unwrap();

    // Forget every kept picture: provisioning must normalise the pictures themselves.
    rt.block_on(async {
        use sqlx::Connection;
        let url = format!("sqlite://{}", dir.join("station.db").display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let done = sqlx::query("DELETE FROM normalized_pictures")
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(done.rows_affected(), 2);
    });
    for kind in kinds {
        let stored = rt
            .block_on(store.seal_picture(&order_no, kind.as_str(), NORMALIZATION_VERSION))
            .unwrap();
        assert!(
            matches!(stored, Some(StoredSealPicture::Source(_))),
            "{kind:?}"
        );
    }
    let from_source = rt
        .block_on(build_order_seals(&station, &hsm, &order, cert))
        .unwrap();
    let pngs_source = rt.block_on(station.seal_picture_pngs(&order)).unwrap();
    assert_eq!(pngs_kept, pngs_source);
    assert_eq!(
        pngs_kept,
        kinds.map(|k| (k, fixture_png(k))).to_vec(),
        "the pictures sealed are the normalised fixtures"
    );

    // Byte-identical seals but for the maker's signature (ECDSA: a fresh one every time): the
    // signed content is the same, and both signatures verify.
    assert_eq!(from_kept.len(), 2);
    assert_eq!(from_source.len(), 2);
    let cfg = station.config();
    let ca = keystation::station::hsm::read_certificate(&cfg.path(&cfg.ca.certificate)).unwrap();
    for (a, b) in from_kept.iter().zip(&from_source) {
        assert_eq!(a.kind, b.kind);
        let (pa, pb) = (parse_seal(&a.der).unwrap(), parse_seal(&b.der).unwrap());
        assert_eq!(
            pa.signed_data_der().unwrap(),
            pb.signed_data_der().unwrap(),
            "{:?}",
            a.kind
        );
        for der in [&a.der, &b.der] {
            let report = rt
                .block_on(station.verify_seal(der, &ca, Some(cert)))
                .unwrap();
            assert!(report.is_valid(), "{:?}", report.failed());
        }
    }
}
