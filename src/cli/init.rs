//! `keystation init --dir DIR`: a new station directory.

use super::opts::InitArgs;
use super::{CliError, output};
use crate::config::{Config, EXAMPLE};
use crate::store::Store;
use anyhow::Context;

pub(super) async fn run(args: &InitArgs, json: bool) -> Result<(), CliError> {
    let dir = &args.dir;
    let config_path = dir.join("station.toml");
    if config_path.exists() {
        return Err(CliError::Usage(format!(
            "{} already exists: this directory holds a station (use --config {})",
            config_path.display(),
            config_path.display()
        )));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut text = EXAMPLE.replace(
        "id = \"station-01\"",
        &format!("id = {:?}", args.station_id),
    );
    if let Some(url) = &args.database_url {
        text = text.replace(
            "url = \"sqlite://station.db?mode=rwc\"",
            &format!("url = {url:?}"),
        );
    }
    let dir_abs =
        std::path::absolute(dir).with_context(|| format!("resolving {}", dir.display()))?;
    // Validate before writing: a bad --station-id or URL must not leave a half-made station.
    let cfg = Config::parse(&text, &dir_abs).map_err(|e| CliError::Usage(e.to_string()))?;
    let tokens = dir_abs.join("tokens");
    std::fs::create_dir_all(&tokens).with_context(|| format!("creating {}", tokens.display()))?;
    std::fs::write(
        dir_abs.join("softhsm2.conf"),
        format!(
            "# SoftHSM2 configuration of this station (SOFTHSM2_CONF={}/softhsm2.conf)\n\
             directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            dir_abs.display(),
            tokens.display()
        ),
    )
    .context("writing softhsm2.conf")?;
    let store = Store::connect(&cfg.database_url())
        .await
        .context("creating the database")?;
    store.close().await;
    std::fs::write(&config_path, text)
        .with_context(|| format!("writing {}", config_path.display()))?;
    if json {
        return output::json(&serde_json::json!({
            "config": config_path, "database": cfg.database_url(),
        }));
    }
    println!("station created: {}", config_path.display());
    println!(
        "next: keystation --config {} order import FILE.json",
        config_path.display()
    );
    Ok(())
}
