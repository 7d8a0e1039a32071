//! `outpost serve`: start-up, listeners, background upkeep and graceful shutdown.
//!
//! Start-up order: lock the data folder, load or create the TLS identity, open (and
//! migrate) the store, create the owner and first network on a first start, bind the
//! HTTPS listeners ([`front_door`]), then tell systemd READY. On SIGTERM or SIGINT:
//! tell systemd STOPPING, stop accepting, close the QUIC endpoints, let device
//! streams answer the sends they have in flight and close, let in-flight requests
//! finish (up to `http.shutdown_timeout_secs`), commit what is queued and close the
//! store.

pub mod bootstrap;
pub mod front_door;
pub mod health;
pub mod notify;
pub mod profile_signer;
pub mod tls;

use crate::admin::{self, AdminState};
use crate::auth::{LoginLimiter, session};
use crate::config::Config;
use crate::directory::user;
use crate::store::{self, DataDirLock, Store};
use actix_web::{App, middleware, web};
use anyhow::{Context, Result};
use health::Health;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Headers on every HTTPS answer (and on the device stream's upgrade).
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("X-Content-Type-Options", "nosniff"),
    ("Strict-Transport-Security", "max-age=31536000"),
    ("Referrer-Policy", "no-referrer"),
];

/// Run the appliance until a stop signal arrives.
pub async fn serve(config: Config) -> Result<()> {
    let started = Instant::now();
    // Take the signals first: SIGHUP's default action would end the process
    // mid-start-up, and a SIGTERM that arrives just after READY must still stop it
    // cleanly.
    let mut stop_signals = StopSignals::install()?;
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot install a SIGHUP handler")?;
    let config = Arc::new(config);
    let _lock = DataDirLock::acquire(&config.data_dir)?;
    let identity = tls::identity(&config)?;
    let live_cert = tls::LiveCert::new(&identity)?;
    let tls_config = tls::server_config(live_cert.clone())?;
    let store = Store::open(&config.data_dir.join(store::DB_FILE), &config.store)
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let first = bootstrap::run(&store, &config, bootstrap::password_from_environment()?)?;
    crate::metrics::init();

    // The calling relay starts once the HTTPS listeners are bound (it must know them);
    // the admin API, the client API and the front door find it here.
    let turn_slot: Arc<std::sync::OnceLock<Arc<crate::calling::Turn>>> = Arc::default();
    let public_url_slot: Arc<std::sync::OnceLock<String>> = Arc::default();
    let mail = start_mail(&config, &store)?;
    let profiles = Arc::new(
        crate::server::profile_signer::ProfileSigner::load(&store, identity.anchor_pem.clone())
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?,
    );
    let admin_state = web::Data::new(AdminState {
        store: store.clone(),
        config: config.clone(),
        limiter: LoginLimiter::new(config.admin.login_attempts_per_minute),
        data_dir: config.data_dir.clone(),
        turn: turn_slot.clone(),
        public_url: public_url_slot.clone(),
        mail: mail.as_ref().map(|(outbox, _)| outbox.clone()),
        profiles: profiles.clone(),
    });
    let pages = web::Data::new(crate::pages::Pages::new(
        store.clone(),
        public_url_slot.clone(),
        profiles.clone(),
        mail.as_ref().map(|(outbox, _)| outbox.clone()),
        config.hostnames[0].clone(),
    ));
    let sso = web::Data::new(crate::auth::sso::Sso::new(
        store.clone(),
        public_url_slot.clone(),
        Duration::from_secs(config.sso.http_timeout_secs),
    ));
    let health = web::Data::new(Arc::new(Health {
        store: store.clone(),
        listening: false.into(),
        stopping: false.into(),
        metrics: config.metrics.clone(),
        started,
        tera: health::templates(),
    }));
    let relay = Arc::new(
        crate::relay::Relay::new(store.clone(), config.relay.clone(), &config.data_dir)
            .map_err(|e| anyhow::anyhow!("{}", e.message))?,
    );
    let relay_data = web::Data::new(relay.clone());
    let retention = crate::retention::Retention::new(
        store.clone(),
        relay.clone(),
        config.retention.clone(),
        &config.data_dir,
        &config.hostnames[0],
    );
    retention.set_pipeline(crate::retention::sink::setup::pipeline(&config.retention)?);
    let retention_data = web::Data::new(retention.clone());
    let client_api = web::Data::new(crate::api::ClientApi {
        relay: relay.clone(),
        limiter: LoginLimiter::new(config.relay.login_attempts_per_minute),
        turn: turn_slot.clone(),
        mail: crate::mail::MailContext {
            outbox: mail.as_ref().map(|(outbox, _)| outbox.clone()),
            public_url: public_url_slot.clone(),
            domain: config.hostnames[0].clone(),
        },
        profiles: profiles.clone(),
    });
    let console = web::Data::new(
        crate::console::Console::load(store.clone())
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?,
    );
    let json_limit = config.http.max_json_bytes;
    let metrics_on = config.metrics.enabled;
    let co = console.clone();
    let rt = retention_data.clone();
    let (hs, ad, rd, ca, pg, so) = (
        health.clone(),
        admin_state.clone(),
        relay_data.clone(),
        client_api.clone(),
        pages.clone(),
        sso.clone(),
    );
    let app = move || {
        let mut app = App::new()
            .app_data(hs.clone())
            .app_data(ad.clone())
            .app_data(rd.clone())
            .app_data(ca.clone())
            .app_data(pg.clone())
            .app_data(so.clone())
            .app_data(co.clone())
            .app_data(rt.clone())
            .wrap(middleware::from_fn(crate::metrics::track))
            .wrap(
                SECURITY_HEADERS
                    .iter()
                    .fold(middleware::DefaultHeaders::new(), |headers, header| {
                        headers.add(*header)
                    }),
            )
            .route("/", web::get().to(health::index))
            .route("/static/outpost.css", web::get().to(health::stylesheet))
            .route("/healthz", web::get().to(health::healthz))
            .route("/readyz", web::get().to(health::readyz))
            .route(
                "/invite/{token}",
                web::get().to(crate::pages::registration::show),
            )
            .route(
                "/invite/{token}",
                web::post().to(crate::pages::registration::submit),
            )
            .route(
                "/profile/{token}",
                web::get().to(crate::pages::profile::download),
            )
            .route("/reset", web::get().to(crate::pages::password_reset::ask))
            .route(
                "/reset",
                web::post().to(crate::pages::password_reset::request),
            )
            .route(
                "/reset/{token}",
                web::get().to(crate::pages::password_reset::show),
            )
            .route(
                "/reset/{token}",
                web::post().to(crate::pages::password_reset::submit),
            )
            .route(
                crate::auth::sso::CALLBACK_PATH,
                web::get().to(crate::pages::sso::callback),
            )
            .configure(|cfg| admin::configure(cfg, json_limit))
            .configure(crate::console::configure)
            .configure(|cfg| crate::api::configure(cfg, json_limit))
            .default_service(web::to(admin::response::not_found));
        if metrics_on {
            app = app.route("/metrics", web::get().to(health::metrics));
        }
        app
    };
    let turn_on_https = config.calling.enabled && config.calling.on_https;
    let (server, bound) = front_door::start(
        &config.http,
        tls_config.clone(),
        relay.clone(),
        turn_on_https.then(|| turn_slot.clone()),
        SECURITY_HEADERS,
        app,
    )?;
    if config.calling.enabled {
        let turn = crate::calling::Turn::start(
            &config,
            relay.clone(),
            store.clone(),
            tls_config.clone(),
            &bound,
        )
        .await?;
        let _ = turn_slot.set(turn);
    }
    let handle = server.handle();
    let running = tokio::spawn(server);
    let quic = if config.relay.quic {
        let addrs: Vec<SocketAddr> = if config.relay.quic_listen.is_empty() {
            bound.clone()
        } else {
            config.relay.quic_listen.clone()
        };
        let eps = crate::relay::quic::listen(relay.clone(), &addrs, tls_config.clone())?;
        for ep in &eps {
            if let Ok(a) = ep.local_addr() {
                tracing::info!("listening for QUIC device streams on udp {a}");
            }
        }
        eps
    } else {
        Vec::new()
    };

    let _ = public_url_slot.set(public_url(&config, bound.first()));
    health.listening.store(true, Ordering::Release);
    let urls: Vec<String> = bound.iter().map(|a| format!("https://{a}")).collect();
    for u in &urls {
        tracing::info!("listening on {u}");
    }
    tracing::info!(
        tls = identity.source,
        trust = %identity.trust_file.display(),
        fingerprint = %identity.fingerprint,
        not_after = ?identity.not_after,
        "TLS identity"
    );
    if let Some(b) = &first {
        bootstrap::announce(b, &public_url(&config, bound.first()));
    }
    crate::system_status::started(
        bound
            .iter()
            .map(|a| ("https".to_string(), a.to_string()))
            .chain(
                quic.iter()
                    .filter_map(|ep| ep.local_addr().ok())
                    .map(|a| ("quic".to_string(), a.to_string())),
            )
            .collect(),
    );
    crate::system_status::certificate_loaded(identity.source, identity.not_after);
    let ready_ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(ready_ms = format!("{ready_ms:.1}"), "outpost is ready");
    notify::ready(&format!("serving on {}", urls.join(", ")));

    let upkeep = tokio::spawn(upkeep(store.clone(), admin_state.clone(), relay.clone()));
    let analytics = tokio::spawn(crate::analytics::daily::run(store.clone()));
    let exporter = retention.start();
    let sso_refresh = tokio::spawn(crate::auth::sso::refresh::run(
        sso.clone().into_inner(),
        relay.clone(),
        Duration::from_secs(config.sso.refresh_check_secs),
    ));
    let reload = tokio::spawn(reload_certificates(
        config.clone(),
        live_cert.clone(),
        hangups,
    ));
    let watchdog = notify::watchdog_interval().map(|every| {
        let s = store.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                notify::watchdog(s.read(|tx| store::meta_get(tx, "schema_version")).is_ok());
            }
        })
    });

    let signal = wait_for_signal(&mut stop_signals).await;
    tracing::info!("received {signal}; stopping (in-flight requests may finish)");
    notify::stopping();
    health.stopping.store(true, Ordering::Release);
    for ep in &quic {
        ep.close(0u32.into(), b"shutting down");
    }
    // Device streams answer what they have in flight and close, rather than holding
    // the HTTP server's graceful stop until http.shutdown_timeout_secs.
    relay.hub.close_all();
    if let Some((_, sender)) = &mail {
        sender.mailer.close().await;
    }
    handle.stop(true).await;
    let _ = running.await;
    for ep in &quic {
        let _ = tokio::time::timeout(Duration::from_secs(2), ep.wait_idle()).await;
    }
    upkeep.abort();
    analytics.abort();
    if let Err(e) = crate::analytics::daily::flush(&store).await {
        tracing::warn!(error = %e, "cannot write the last analytics counts");
    }
    exporter.abort();
    sso_refresh.abort();
    reload.abort();
    if let Some(w) = watchdog {
        w.abort();
    }
    drop(admin_state);
    drop(sso);
    drop(health);
    drop(client_api);
    drop(retention_data);
    drop(retention);
    drop(relay_data);
    drop(relay);
    store.close();
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Starts the mail worker unless mail is off: its wake-up handle, and the mailer (to
/// close its SMTP sessions on stop).
fn start_mail(
    config: &Config,
    store: &Store,
) -> Result<Option<(crate::mail::outbox::Outbox, Arc<crate::mail::OutboxSender>)>> {
    use crate::config::MailTransport;
    use crate::mail::outbox;
    let m = &config.mail;
    if m.transport == MailTransport::None {
        tracing::info!("mail is off (mail.transport = \"none\"): invitations return their links");
        return Ok(None);
    }
    let mailer =
        crate::mail::Mailer::new(m, &config.data_dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    tracing::info!(mail = %mailer.describe(), "mail transport");
    let sender = Arc::new(crate::mail::OutboxSender {
        mailer,
        from: m.from.clone(),
    });
    let handle = outbox::Outbox::default();
    let backoff = outbox::Backoff {
        initial: Duration::from_secs(m.retry_initial_secs),
        max: Duration::from_secs(m.retry_max_secs),
        max_attempts: m.max_attempts,
    };
    tokio::spawn(outbox::run(
        store.clone(),
        handle.clone(),
        sender.clone(),
        backoff,
    ));
    Ok(Some((handle, sender)))
}

/// The URL people should use: a wildcard listen address is no address, so name the
/// appliance by its first host name instead.
fn public_url(config: &Config, bound: Option<&SocketAddr>) -> String {
    match bound {
        Some(a) if a.ip().is_unspecified() => match a.port() {
            443 => format!("https://{}", config.hostnames[0]),
            p => format!("https://{}:{p}", config.hostnames[0]),
        },
        Some(a) => format!("https://{a}"),
        None => format!("https://{}", config.hostnames[0]),
    }
}

/// The stop signals, installed before READY so that a SIGTERM right after start-up
/// still stops the appliance cleanly.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            term: signal(SignalKind::terminate()).context("cannot install a SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("cannot install a SIGINT handler")?,
        })
    }
}

async fn wait_for_signal(s: &mut StopSignals) -> &'static str {
    let StopSignals { term, int } = s;
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

/// Keep the TLS identity fresh without a restart: renew a generated certificate
/// inside its renewal window (checked every hour), and reload from disk on SIGHUP
/// (`systemctl reload outpost` after installing new site certificates).
async fn reload_certificates(
    config: Arc<Config>,
    live: Arc<tls::LiveCert>,
    mut hup: tokio::signal::unix::Signal,
) {
    let mut hourly = tokio::time::interval(Duration::from_secs(3600));
    hourly.tick().await;
    loop {
        let why = tokio::select! {
            _ = hup.recv() => "SIGHUP",
            _ = hourly.tick() => {
                if !live.due_for_renewal() {
                    continue;
                }
                "renewal"
            }
        };
        let cfg = config.clone();
        let loaded = tokio::task::spawn_blocking(move || tls::identity(&cfg)).await;
        match loaded {
            Ok(Ok(id)) => match live.replace(&id) {
                Ok(()) => {
                    crate::system_status::certificate_loaded(id.source, id.not_after);
                    tracing::info!(reason = why, source = id.source, not_after = ?id.not_after, "TLS certificate reloaded")
                }
                Err(e) => {
                    tracing::error!(reason = why, error = %format!("{e:#}"), "the new TLS certificate cannot be used; keeping the current one")
                }
            },
            Ok(Err(e)) => {
                tracing::error!(reason = why, error = %format!("{e:#}"), "cannot load the TLS certificate; keeping the current one")
            }
            Err(e) => {
                tracing::error!(reason = why, error = %e, "certificate reload was interrupted")
            }
        }
    }
}

/// Periodic housekeeping: expired user locks, expired admin sessions, idle rate-limit
/// state, expired relay items and unreferenced attachments.
async fn upkeep(store: Store, admin: web::Data<AdminState>, relay: Arc<crate::relay::Relay>) {
    let purge_every = Duration::from_secs(relay.config.purge_interval_secs);
    let mut tick = tokio::time::interval(purge_every.min(Duration::from_secs(30)));
    let mut last_purge = Instant::now();
    let unlocked_any = std::sync::atomic::AtomicBool::new(false);
    loop {
        tick.tick().await;
        let now = chrono::Utc::now();
        match store
            .write(move |tx| {
                Ok((
                    user::unlock_expired(tx, now)?,
                    session::purge_expired(tx, now)?,
                ))
            })
            .await
        {
            Ok((unlocked, purged)) if unlocked + purged > 0 => {
                if unlocked > 0 {
                    unlocked_any.store(true, Ordering::Release);
                }
                tracing::info!(
                    unlocked,
                    purged,
                    "upkeep: unlocked accounts and removed expired sessions"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "upkeep failed"),
        }
        admin.limiter.sweep();
        if last_purge.elapsed() >= purge_every {
            last_purge = Instant::now();
            match relay.purge().await {
                Ok((items, entries, blobs)) if items + blobs > 0 => {
                    tracing::info!(
                        items,
                        entries,
                        blobs,
                        "upkeep: purged expired envelopes and unreferenced attachments"
                    )
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "relay purge failed"),
            }
        }
        if unlocked_any.swap(false, Ordering::AcqRel) {
            relay.directory_changed();
        }
    }
}
