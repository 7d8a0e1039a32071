//! First start: the first network and the owner account.
//!
//! On a store with no admin account, outpost creates the owner (`admin.bootstrap_username`)
//! and, if there is no network yet, the first network with its default group. The
//! owner's password comes from the systemd credential `bootstrap-admin-password` or
//! `OUTPOST_BOOTSTRAP_ADMIN_PASSWORD` when set (for automation); otherwise a random
//! one-time password is printed once on stderr — never through the log — and must be
//! changed at first sign-in.

use crate::audit::{self, Draft, Outcome};
use crate::auth::{Role, admin, password};
use crate::config::Config;
use crate::directory::network;
use crate::store::Store;
use anyhow::{Result, bail};
use chrono::Utc;

pub const PASSWORD_ENV: &str = "OUTPOST_BOOTSTRAP_ADMIN_PASSWORD";
/// Name of the systemd credential (`LoadCredential=bootstrap-admin-password:FILE`)
/// that carries the first password without putting it in the environment.
pub const PASSWORD_CREDENTIAL: &str = "bootstrap-admin-password";

/// The operator-chosen first password: a systemd credential, else the environment.
pub fn password_from_environment() -> Result<Option<ChosenPassword>> {
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        let path = std::path::Path::new(&dir).join(PASSWORD_CREDENTIAL);
        if path.is_file() {
            let p = std::fs::read_to_string(&path).map_err(|e| {
                anyhow::anyhow!("cannot read the credential {}: {e}", path.display())
            })?;
            let p = p.trim_end_matches(['\r', '\n']).to_string();
            if !p.is_empty() {
                return Ok(Some(ChosenPassword {
                    password: p,
                    source: "the systemd credential bootstrap-admin-password",
                }));
            }
        }
    }
    Ok(std::env::var(PASSWORD_ENV)
        .ok()
        .filter(|p| !p.is_empty())
        .map(|password| ChosenPassword {
            password,
            source: PASSWORD_ENV,
        }))
}

/// What the first start created, if anything.
pub struct Bootstrapped {
    pub username: String,
    /// The one-time password, when outpost generated it.
    pub generated_password: Option<String>,
    /// Where an operator-chosen password came from.
    pub chosen_from: Option<&'static str>,
    pub network_id: Option<String>,
}

/// A first password chosen by the operator, and where it came from.
pub struct ChosenPassword {
    pub password: String,
    /// `the systemd credential bootstrap-admin-password` or the variable's name.
    pub source: &'static str,
}

pub fn run(
    store: &Store,
    config: &Config,
    chosen: Option<ChosenPassword>,
) -> Result<Option<Bootstrapped>> {
    let has_admin = store.read(|tx| Ok(!admin::list(tx)?.is_empty()))?;
    if has_admin {
        return Ok(None);
    }
    let username = config.admin.bootstrap_username.clone();
    let chosen_from = chosen.as_ref().map(|c| c.source);
    let (pw, generated) = match chosen {
        Some(c) => {
            if let Some(problem) = password::admin_password_problem(&username, &c.password) {
                bail!("the first owner password from {}: {problem}", c.source);
            }
            (c.password, false)
        }
        None => (password::random_password(20), true),
    };
    let phc = password::hash(&pw)?;
    let network_name = config.bootstrap.network_name.clone();
    let net = store.write_now(|tx| {
        let net = if network::list(tx)?.is_empty() {
            let (n, _) = network::create(tx, &network_name, &Default::default(), None)?;
            Some(n.id)
        } else {
            None
        };
        admin::create(tx, &username, phc.clone(), Role::Owner, &[], generated)?;
        audit::append(
            tx,
            &Draft {
                id: uuid::Uuid::new_v4().to_string(),
                name: "InitializeAppliance".into(),
                time: Utc::now(),
                admin: None,
                source_ip: "local".into(),
                user_agent: format!("outpost/{}", env!("CARGO_PKG_VERSION")),
                network_id: net.clone(),
                parameters: serde_json::json!({
                    "owner": username,
                    "network_name": network_name,
                    "password_chosen_by": chosen_from.unwrap_or("generated"),
                }),
                result: Outcome::success(0),
                read_only: false,
            },
        )?;
        Ok(net)
    })?;
    Ok(Some(Bootstrapped {
        username,
        generated_password: generated.then_some(pw),
        chosen_from,
        network_id: net,
    }))
}

/// Show the first-start credentials on stderr (not through the log).
pub fn announce(b: &Bootstrapped, url: &str) {
    let rule = "=".repeat(72);
    let mut lines = vec![
        rule.clone(),
        " outpost: first start — created the owner account".to_string(),
        format!("   admin API: {url}/admin/api/v1"),
        format!("   username:  {}", b.username),
    ];
    match &b.generated_password {
        Some(p) => {
            lines.push(format!("   password:  {p}"));
            lines.push(" This one-time password is shown only here and is not logged;".into());
            lines.push(" it must be changed at the first sign-in.".into());
        }
        None => lines.push(format!(
            "   password:  (from {})",
            b.chosen_from.unwrap_or(PASSWORD_ENV)
        )),
    }
    if let Some(n) = &b.network_id {
        lines.push(format!("   first network id: {n}"));
    }
    lines.push(rule);
    eprintln!("{}", lines.join("\n"));
}
