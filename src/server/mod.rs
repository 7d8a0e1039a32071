//! `outpost serve`: start-up, listeners, background upkeep and graceful shutdown.
//!
//! Start-up order: lock the data folder, load or create the TLS identity, open (and
//! migrate) the store, create the owner and first network on a first start, bind the
//! HTTPS listeners, then tell systemd READY. On SIGTERM or SIGINT: tell systemd
//! STOPPING, stop accepting, let in-flight requests finish (up to
//! `http.shutdown_timeout_secs`), commit what is queued and close the store.

pub mod bootstrap;
pub mod health;
pub mod notify;
pub mod tls;

use crate::admin::{self, AdminState};
use crate::auth::{LoginLimiter, session};
use crate::config::Config;
use crate::directory::user;
use crate::store::{self, DataDirLock, Store};
use actix_web::{App, HttpServer, middleware, web};
use anyhow::{Context, Result};
use health::Health;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Run the appliance until a stop signal arrives.
pub async fn serve(config: Config) -> Result<()> {
    let started = Instant::now();
    let config = Arc::new(config);
    let _lock = DataDirLock::acquire(&config.data_dir)?;
    let identity = tls::identity(&config)?;
    let tls_config = tls::server_config(&identity)?;
    let store = Store::open(&config.data_dir.join(store::DB_FILE), &config.store)
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let first = bootstrap::run(
        &store,
        &config,
        std::env::var(bootstrap::PASSWORD_ENV)
            .ok()
            .filter(|p| !p.is_empty()),
    )?;
    crate::metrics::init();

    let admin_state = web::Data::new(AdminState {
        store: store.clone(),
        config: config.clone(),
        limiter: LoginLimiter::new(config.admin.login_attempts_per_minute),
        data_dir: config.data_dir.clone(),
    });
    let health = web::Data::new(Arc::new(Health {
        store: store.clone(),
        listening: false.into(),
        stopping: false.into(),
        metrics: config.metrics.clone(),
        started,
        tera: health::templates(),
    }));
    let json_limit = config.http.max_json_bytes;
    let metrics_on = config.metrics.enabled;
    let (hs, ad) = (health.clone(), admin_state.clone());
    let mut server = HttpServer::new(move || {
        let mut app = App::new()
            .app_data(hs.clone())
            .app_data(ad.clone())
            .wrap(middleware::from_fn(crate::metrics::track))
            .wrap(
                middleware::DefaultHeaders::new()
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("Strict-Transport-Security", "max-age=31536000"))
                    .add(("Referrer-Policy", "no-referrer")),
            )
            .route("/", web::get().to(health::index))
            .route("/static/outpost.css", web::get().to(health::stylesheet))
            .route("/healthz", web::get().to(health::healthz))
            .route("/readyz", web::get().to(health::readyz))
            .configure(|cfg| admin::configure(cfg, json_limit))
            .default_service(web::to(admin::response::not_found));
        if metrics_on {
            app = app.route("/metrics", web::get().to(health::metrics));
        }
        app
    })
    .disable_signals()
    .shutdown_timeout(config.http.shutdown_timeout_secs);
    if config.http.workers > 0 {
        server = server.workers(config.http.workers);
    }
    for addr in &config.http.listen {
        server = server
            .bind_rustls_0_23(addr, tls_config.clone())
            .with_context(|| format!("cannot listen on {addr} (http.listen)"))?;
    }
    let bound: Vec<SocketAddr> = server.addrs();
    let server = server.run();
    let handle = server.handle();
    let running = tokio::spawn(server);

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
        bootstrap::announce(b, urls.first().map(String::as_str).unwrap_or(""));
    }
    let ready_ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(ready_ms = format!("{ready_ms:.1}"), "outpost is ready");
    notify::ready(&format!("serving on {}", urls.join(", ")));

    let upkeep = tokio::spawn(upkeep(store.clone(), admin_state.clone()));
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

    let signal = wait_for_signal().await;
    tracing::info!("received {signal}; stopping (in-flight requests may finish)");
    notify::stopping();
    health.stopping.store(true, Ordering::Release);
    handle.stop(true).await;
    let _ = running.await;
    upkeep.abort();
    if let Some(w) = watchdog {
        w.abort();
    }
    drop(admin_state);
    drop(health);
    store.close();
    tracing::info!("stopped cleanly");
    Ok(())
}

async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install a SIGINT handler");
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

/// Periodic housekeeping: expired user locks, expired admin sessions, idle rate-limit state.
async fn upkeep(store: Store, admin: web::Data<AdminState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(30));
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
    }
}
