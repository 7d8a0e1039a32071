//! Signing a new device in through single sign-on (PROTOCOL.md §2.9), as a native app
//! does (RFC 8252): listen on a loopback port, start the sign-in with the company id and
//! the S256 challenge of a fresh PKCE verifier, let the person open the authorization
//! URL in any browser, take the one-time grant the appliance's callback sends to the
//! loopback listener, and redeem it with the verifier for a device token — then finish
//! exactly like a password login (keys, profile).

use super::api::{SsoStart, SsoToken};
use super::crypto::DeviceKeys;
use super::session::{Appliance, LoginOutcome, device_info, finish_login, public_keys};
use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The path of the loopback listener.
const CALLBACK: &str = "/callback";
/// How long to wait for the browser (the appliance keeps a sign-in 10 minutes).
const WAIT: Duration = Duration::from_secs(600);

/// What a single sign-on login needs.
#[derive(Debug, Clone)]
pub struct SsoLoginRequest {
    pub appliance: Appliance,
    pub company_id: String,
    /// The person's e-mail address (or IdP user name), to prefill the provider's login.
    pub login_hint: Option<String>,
    pub device_name: String,
}

/// Register a new device with fresh keys through the company's identity provider;
/// `show` is given the URL the person must open. The profile is not saved here.
pub async fn login_sso(req: &SsoLoginRequest, show: impl FnOnce(&str)) -> Result<LoginOutcome> {
    let (api, ca_cert) = req.appliance.api()?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot listen on a loopback port for the identity provider's answer")?;
    let port = listener.local_addr()?.port();
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let started = api
        .sso_start(&SsoStart {
            company_id: req.company_id.clone(),
            login_hint: req.login_hint.clone(),
            redirect_uri: Some(format!("http://127.0.0.1:{port}{CALLBACK}")),
            code_challenge: challenge,
        })
        .await
        .context("cannot start the single sign-on")?;
    show(&started.authorization_url);
    let code = tokio::time::timeout(WAIT, wait_for_grant(&listener))
        .await
        .context("no answer from the browser within 10 minutes; start again")??;
    let keys = DeviceKeys::generate(&mut rand::rng());
    let public = public_keys(&keys);
    let info = device_info(&req.device_name);
    let reg = api
        .sso_token(&SsoToken {
            code,
            code_verifier: verifier,
            name: info.name,
            platform: info.platform,
            client_version: info.client_version,
            keys: Some(public.clone()),
        })
        .await
        .context("cannot log in")?;
    finish_login(&api, &req.appliance, ca_cert, &keys, &public, reg).await
}

/// Serve the loopback listener until the browser arrives with `code` (the grant) or
/// `error`; answers the browser with a short page.
async fn wait_for_grant(listener: &TcpListener) -> Result<String> {
    loop {
        let (mut conn, _) = listener.accept().await?;
        let mut buf = vec![0u8; 16 * 1024];
        let mut len = 0;
        // Read the request head (the query is all that matters).
        while len < buf.len() && !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
            match tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf[len..])).await {
                Ok(Ok(0)) | Err(_) => break,
                Ok(Ok(n)) => len += n,
                Ok(Err(_)) => break,
            }
        }
        let head = String::from_utf8_lossy(&buf[..len]);
        let target = head
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("GET "))
            .and_then(|l| l.split(' ').next())
            .unwrap_or("");
        let Ok(url) = reqwest::Url::parse(&format!("http://127.0.0.1{target}")) else {
            respond(
                &mut conn,
                "400 Bad Request",
                "This is not a sign-in answer.",
            )
            .await;
            continue;
        };
        if url.path() != CALLBACK {
            respond(&mut conn, "404 Not Found", "Nothing here.").await;
            continue;
        }
        let param = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        if let Some(code) = param("code") {
            respond(
                &mut conn,
                "200 OK",
                "You are signed in. You can close this window and return to the outpost client.",
            )
            .await;
            return Ok(code);
        }
        let error = param("error").unwrap_or_else(|| "no code".into());
        let why = param("error_description").unwrap_or_default();
        respond(
            &mut conn,
            "200 OK",
            &format!("Sign-in failed: {why} ({error})"),
        )
        .await;
        bail!("the sign-in failed: {why} ({error})");
    }
}

async fn respond(conn: &mut tokio::net::TcpStream, status: &str, text: &str) {
    let body = format!(
        "<!doctype html><meta charset=\"utf-8\"><title>outpost</title><p>{}</p>",
        crate::html::escape(text)
    );
    let msg = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(msg.as_bytes()).await;
    let _ = conn.shutdown().await;
}
