//! `outpost admin sso show|set|test NETWORK`: a network's single sign-on through its
//! OpenID Connect identity provider (GetOidcInfo, RegisterOidcConfig,
//! RegisterOidcConfigTest). `set` changes only what it is given; the client secret is
//! read from standard input, never from the command line.

use super::client::{Client, seg};
use super::output;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum SsoCmd {
    /// Show the configuration and the redirect URI to register at the identity provider.
    Show { network: String },
    /// Save the configuration; options left out keep their value. Turning it on
    /// (--enable) signs out every device of the network's users.
    Set(SetArgs),
    /// Test the saved configuration against the identity provider.
    Test { network: String },
}

#[derive(Debug, Args)]
pub struct SetArgs {
    pub network: String,
    /// What people type to sign in: letters, digits and _.
    #[arg(long)]
    pub company_id: Option<String>,
    /// The issuer URL, exactly as the provider's discovery document names itself.
    #[arg(long)]
    pub issuer: Option<String>,
    #[arg(long)]
    pub client_id: Option<String>,
    /// Read the client secret from the first line of standard input.
    #[arg(long)]
    pub client_secret_stdin: bool,
    /// Remove the client secret (a public client).
    #[arg(long, conflicts_with = "client_secret_stdin")]
    pub no_client_secret: bool,
    /// Space-separated scopes, with openid (default "openid email profile offline_access").
    #[arg(long)]
    pub scopes: Option<String>,
    /// The claim whose value is the username, e.g. email, upn, preferred_username.
    #[arg(long)]
    pub username_claim: Option<String>,
    /// PEM file with the CA certificate of a private issuer.
    #[arg(long, value_name = "PEM_FILE")]
    pub issuer_ca: Option<PathBuf>,
    /// Trust only the system's roots for the issuer again.
    #[arg(long, conflicts_with = "issuer_ca")]
    pub no_issuer_ca: bool,
    /// Minutes a device stays signed in while the provider cannot be reached: 0, 30, 60.
    #[arg(long)]
    pub refresh_grace_minutes: Option<u32>,
    /// Turn single sign-on on.
    #[arg(long)]
    pub enable: bool,
    /// Turn single sign-on off.
    #[arg(long, conflicts_with = "enable")]
    pub disable: bool,
}

fn show(v: &Value, as_json: bool) {
    if as_json {
        output::json(v)
    } else {
        output::fields(v)
    }
}

pub async fn run(c: &Client, as_json: bool, cmd: SsoCmd) -> Result<()> {
    let path = |n: &str| format!("/networks/{}/sso", seg(n));
    match cmd {
        SsoCmd::Show { network } => show(&c.get(&path(&network)).await?, as_json),
        SsoCmd::Test { network } => {
            let v = c
                .json(Method::POST, &format!("{}/test", path(&network)), None)
                .await?;
            show(&v, as_json);
        }
        SsoCmd::Set(a) => {
            let current = c.get(&path(&a.network)).await?;
            let required = |given: &Option<String>, field: &str| -> Result<Value> {
                match given {
                    Some(v) => Ok(json!(v)),
                    None if current[field].is_string() => Ok(current[field].clone()),
                    None => bail!(
                        "--{} is required: network {} has no single sign-on yet",
                        field.replace('_', "-"),
                        a.network
                    ),
                }
            };
            let mut body = json!({
                "company_id": required(&a.company_id, "company_id")?,
                "issuer": required(&a.issuer, "issuer")?,
                "client_id": required(&a.client_id, "client_id")?,
            });
            if a.client_secret_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("cannot read the client secret from standard input")?;
                body["client_secret"] = json!(line.trim_end_matches(['\r', '\n']));
            } else if a.no_client_secret {
                body["client_secret"] = Value::Null;
            }
            if let Some(s) = a.scopes {
                body["scopes"] = json!(s);
            }
            if let Some(u) = a.username_claim {
                body["username_claim"] = json!(u);
            }
            if let Some(f) = &a.issuer_ca {
                let pem = std::fs::read_to_string(f)
                    .with_context(|| format!("cannot read {}", f.display()))?;
                body["ca_certificate"] = json!(pem);
            } else if a.no_issuer_ca {
                body["ca_certificate"] = Value::Null;
            }
            if let Some(m) = a.refresh_grace_minutes {
                body["refresh_grace_minutes"] = json!(m);
            }
            if a.enable || a.disable {
                body["enabled"] = json!(a.enable);
            }
            let v = c.json(Method::PUT, &path(&a.network), Some(&body)).await?;
            show(&v, as_json);
        }
    }
    Ok(())
}
