//! Orders for the benches that need approved orders in a station's queue.

use keystation::clock::SystemClock;
use keystation::config::Config;
use keystation::domain::OrderNo;
use keystation::station::Station;
use keystation::station::demo::{generated_orders, write_fixture_pictures};
use keystation::station::intake::ImportOptions;
use std::path::Path;
use std::sync::Arc;

/// `orders` generated orders (the demo's, with their seal pictures written to `dir`) imported
/// and approved at the station of `config` by the bench operator; their numbers.
pub async fn approved(config: &Path, dir: &Path, orders: usize) -> Vec<OrderNo> {
    std::fs::create_dir_all(dir).unwrap();
    write_fixture_pictures(dir).unwrap();
    let file = generated_orders(dir, orders).unwrap();
    let station = Station::open(Config::load(config).unwrap(), Arc::new(SystemClock))
        .await
        .unwrap()
        .with_credential(Some(super::credential(config, "bench")));
    let options = ImportOptions {
        operator: Some("bench".into()),
        uscc_checksum_override: None,
    };
    let imported = station.import_orders(&file, &options).await.unwrap();
    for no in &imported.imported {
        station.approve_order(no, "bench", None).await.unwrap();
    }
    station.close().await;
    imported.imported
}
