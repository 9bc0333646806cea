//! Where the admin token comes from: the configuration, or a file in the data dir generated on
//! first start (mode 0600) and printed once in the log.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use crate::config::Config;
use crate::keys::secret;

/// The file, inside the data dir, that keeps a generated admin token.
pub const TOKEN_FILE: &str = "admin_token";

/// The admin token to use, generating and storing one if the configuration has none.
pub fn resolve(config: &Config) -> std::io::Result<String> {
    if let Some(token) = &config.admin.token {
        return Ok(token.clone());
    }
    let path = token_path(config);
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= 16 => return Ok(text.trim().to_owned()),
        Ok(_) => {
            return Err(std::io::Error::other(format!(
                "{} holds no usable admin token (16+ characters); delete it to have a new one generated",
                path.display()
            )));
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    std::fs::create_dir_all(&config.storage.data_dir)?;
    let token = format!("adm_{}{}", secret::generate_id(), secret::generate_id());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    file.write_all(token.as_bytes())?;
    file.sync_all()?;
    // Shown once whatever the log filter says: a filter that hides warnings must not hide it.
    if tracing::enabled!(tracing::Level::WARN) {
        tracing::warn!(
            path = %path.display(),
            "generated the admin token (shown this once; it is kept in that file, mode 0600): {token}"
        );
    } else {
        eprintln!(
            "panlink: generated the admin token (shown this once; it is kept in {}, mode 0600): {token}",
            path.display()
        );
    }
    Ok(token)
}

fn token_path(config: &Config) -> PathBuf {
    config.storage.data_dir.join(TOKEN_FILE)
}
