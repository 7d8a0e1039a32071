//! Prometheus metrics: the registry, every metric outpost exports, and the HTTP
//! middleware that counts requests by route and status.
//!
//! Metrics are process-wide statics registered once in [`REGISTRY`]. Values that are
//! cheaper to read than to track (store size, users by status) are set just before a
//! scrape by [`render`]'s caller. Names follow Prometheus conventions (`_total` for
//! counters, base units in the name) so `promtool check metrics` accepts the page.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::sync::LazyLock;
use std::time::Instant;

pub static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    let r = Registry::new();
    #[cfg(target_os = "linux")]
    r.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ))
    .expect("register the process collector");
    r
});

fn reg<T: prometheus::core::Collector + Clone + 'static>(c: T) -> T {
    REGISTRY
        .register(Box::new(c.clone()))
        .expect("metric names are unique");
    c
}

/// Metrics of the embedded store.
pub mod store {
    use super::*;

    pub static COMMIT_OPS: LazyLock<Histogram> = LazyLock::new(|| {
        reg(Histogram::with_opts(
            HistogramOpts::new(
                "outpost_store_commit_ops",
                "Write operations carried by each durable store commit (group commit batch size).",
            )
            .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 64.0, 256.0, 1024.0, 4096.0]),
        )
        .expect("valid histogram"))
    });

    pub static COMMIT_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
        reg(Histogram::with_opts(
            HistogramOpts::new(
                "outpost_store_commit_duration_seconds",
                "Time to apply and durably commit one store transaction.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
        )
        .expect("valid histogram"))
    });

    pub static SIZE_BYTES: LazyLock<IntGauge> = LazyLock::new(|| {
        reg(IntGauge::new(
            "outpost_store_size_bytes",
            "Size of the store file on disk.",
        )
        .expect("valid gauge"))
    });
}

/// Metrics of the directory (set at scrape time from the store's counters).
pub mod directory {
    use super::*;

    pub static USERS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
        reg(IntGaugeVec::new(
            Opts::new("outpost_users", "Users (not bots) by network and status."),
            &["network_id", "status"],
        )
        .expect("valid gauge"))
    });

    pub static BOTS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
        reg(IntGaugeVec::new(
            Opts::new("outpost_bots", "Bots by network."),
            &["network_id"],
        )
        .expect("valid gauge"))
    });

    pub static NETWORKS: LazyLock<IntGauge> = LazyLock::new(|| {
        reg(
            IntGauge::new("outpost_networks", "Networks hosted by this appliance.")
                .expect("valid gauge"),
        )
    });
}

/// Metrics of the admin API.
pub mod admin {
    use super::*;

    pub static LOGINS: LazyLock<IntCounterVec> = LazyLock::new(|| {
        reg(IntCounterVec::new(
            Opts::new(
                "outpost_admin_logins_total",
                "Admin sign-in attempts by result.",
            ),
            &["result"],
        )
        .expect("valid counter"))
    });

    pub static AUDIT_EVENTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
        reg(IntCounterVec::new(
            Opts::new(
                "outpost_audit_events_total",
                "Audit events recorded, by result.",
            ),
            &["result"],
        )
        .expect("valid counter"))
    });
}

/// Metrics of the HTTPS listener.
pub mod http {
    use super::*;

    pub static REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
        reg(IntCounterVec::new(
            Opts::new(
                "outpost_http_requests_total",
                "HTTP requests by route, method and status.",
            ),
            &["route", "method", "status"],
        )
        .expect("valid counter"))
    });

    pub static DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
        reg(HistogramVec::new(
            HistogramOpts::new(
                "outpost_http_request_duration_seconds",
                "Time from request to response, by route and method.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
            ]),
            &["route", "method"],
        )
        .expect("valid histogram"))
    });
}

/// Metrics of the messaging relay.
pub mod relay {
    use super::*;
    use prometheus::IntCounter;

    pub static CONNECTED: LazyLock<IntGaugeVec> = LazyLock::new(|| {
        reg(IntGaugeVec::new(
            Opts::new(
                "outpost_relay_connected_devices",
                "Devices with an open, authenticated stream, by transport.",
            ),
            &["transport"],
        )
        .expect("valid gauge"))
    });

    pub static ACCEPTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
        reg(IntCounterVec::new(
            Opts::new(
                "outpost_relay_envelopes_accepted_total",
                "Envelopes durably accepted, by kind (retries answered from the first acceptance are not counted).",
            ),
            &["kind"],
        )
        .expect("valid counter"))
    });

    pub static DELIVERED: LazyLock<IntCounterVec> = LazyLock::new(|| {
        reg(IntCounterVec::new(
            Opts::new(
                "outpost_relay_envelopes_delivered_total",
                "Envelopes and events written to a device's stream, by transport.",
            ),
            &["transport"],
        )
        .expect("valid counter"))
    });

    pub static REFUSED: LazyLock<IntCounterVec> = LazyLock::new(|| {
        reg(IntCounterVec::new(
            Opts::new(
                "outpost_relay_envelopes_refused_total",
                "Envelopes refused, by reason (the error code).",
            ),
            &["reason"],
        )
        .expect("valid counter"))
    });

    pub static ACKED: LazyLock<IntCounter> = LazyLock::new(|| {
        reg(IntCounter::new(
            "outpost_relay_mailbox_acked_total",
            "Mailbox entries removed because their device acknowledged them.",
        )
        .expect("valid counter"))
    });

    pub static EXPIRED: LazyLock<IntCounter> = LazyLock::new(|| {
        reg(IntCounter::new(
            "outpost_relay_mailbox_expired_total",
            "Mailbox entries removed because their item expired before delivery.",
        )
        .expect("valid counter"))
    });

    pub static MAILBOX_ENTRIES: LazyLock<IntGauge> = LazyLock::new(|| {
        reg(IntGauge::new(
            "outpost_relay_mailbox_entries",
            "Envelopes and events waiting in device mailboxes (all devices).",
        )
        .expect("valid gauge"))
    });

    pub static COMMIT_ENVELOPES: LazyLock<Histogram> = LazyLock::new(|| {
        reg(Histogram::with_opts(
            HistogramOpts::new(
                "outpost_relay_commit_envelopes",
                "Envelopes and events stored by each of the relay's durable commits (its group-commit batch size).",
            )
            .buckets(vec![
                1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0,
            ]),
        )
        .expect("valid histogram"))
    });

    pub static DELIVERY_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
        reg(Histogram::with_opts(
            HistogramOpts::new(
                "outpost_relay_delivery_latency_seconds",
                "Time from an envelope's acceptance to its delivery on a connected device's stream.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 60.0,
            ]),
        )
        .expect("valid histogram"))
    });
}

/// Metrics of the calling relay (TURN).
pub mod calling {
    use super::*;
    use prometheus::IntCounter;

    pub static ALLOCATIONS_ACTIVE: LazyLock<IntGaugeVec> = LazyLock::new(|| {
        reg(IntGaugeVec::new(
            Opts::new(
                "outpost_turn_allocations_active",
                "TURN allocations alive now, by client transport.",
            ),
            &["transport"],
        )
        .expect("valid gauge"))
    });

    pub static ALLOCATIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
        reg(IntCounterVec::new(
            Opts::new(
                "outpost_turn_allocations_total",
                "TURN allocations made, by client transport.",
            ),
            &["transport"],
        )
        .expect("valid counter"))
    });

    pub static PACKETS: LazyLock<IntCounterVec> = LazyLock::new(|| {
        reg(IntCounterVec::new(
            Opts::new(
                "outpost_turn_relayed_packets_total",
                "Packets relayed, by direction (to_peer, to_client) and client transport.",
            ),
            &["direction", "transport"],
        )
        .expect("valid counter"))
    });

    pub static BYTES: LazyLock<IntCounterVec> = LazyLock::new(|| {
        reg(IntCounterVec::new(
            Opts::new(
                "outpost_turn_relayed_bytes_total",
                "Application bytes relayed (without TURN framing), by direction and client transport.",
            ),
            &["direction", "transport"],
        )
        .expect("valid counter"))
    });

    pub static DROPPED: LazyLock<IntCounterVec> = LazyLock::new(|| {
        reg(IntCounterVec::new(
            Opts::new(
                "outpost_turn_dropped_packets_total",
                "Packets not relayed, by reason (no_permission, no_channel, bandwidth, no_allocation, queue_full).",
            ),
            &["reason"],
        )
        .expect("valid counter"))
    });

    pub static AUTH_FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
        reg(IntCounterVec::new(
            Opts::new(
                "outpost_turn_auth_failures_total",
                "Refused TURN authentications, by reason (wrong_password, expired, malformed_username, unknown_user, stale_nonce, wrong_realm, wrong_username, account_inactive, calling_disabled, tcp_required).",
            ),
            &["reason"],
        )
        .expect("valid counter"))
    });

    pub static DENIED_PEERS: LazyLock<IntCounterVec> = LazyLock::new(|| {
        reg(IntCounterVec::new(
            Opts::new(
                "outpost_turn_denied_peers_total",
                "Peer addresses refused by the peer policy, by reason (address, own_service).",
            ),
            &["reason"],
        )
        .expect("valid counter"))
    });

    pub static QUOTA_REFUSALS: LazyLock<IntCounterVec> = LazyLock::new(|| {
        reg(IntCounterVec::new(
            Opts::new(
                "outpost_turn_quota_refusals_total",
                "Allocations refused for a quota, by quota (user, total).",
            ),
            &["quota"],
        )
        .expect("valid counter"))
    });

    pub static RATE_LIMITED: LazyLock<IntCounter> = LazyLock::new(|| {
        reg(IntCounter::new(
            "outpost_turn_rate_limited_total",
            "Unauthenticated requests left unanswered because their source sent too many.",
        )
        .expect("valid counter"))
    });

    pub static AMPLIFICATION_REFUSED: LazyLock<IntCounter> = LazyLock::new(|| {
        reg(IntCounter::new(
            "outpost_turn_amplification_refused_total",
            "Unauthenticated UDP requests left unanswered because the answer would be larger (calling.strict_amplification).",
        )
        .expect("valid counter"))
    });

    pub static CALLS: LazyLock<IntCounter> = LazyLock::new(|| {
        reg(IntCounter::new(
            "outpost_turn_calls_total",
            "Calls recorded (a call ends when its last allocation does).",
        )
        .expect("valid counter"))
    });
}

pub static BUILD_INFO: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    reg(IntGaugeVec::new(
        Opts::new(
            "outpost_build_info",
            "Always 1; labels carry the running release.",
        ),
        &["version"],
    )
    .expect("valid gauge"))
});

/// Touch every static so the page lists them all from the first scrape.
pub fn init() {
    BUILD_INFO
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
    LazyLock::force(&store::COMMIT_OPS);
    LazyLock::force(&store::COMMIT_SECONDS);
    LazyLock::force(&relay::COMMIT_ENVELOPES);
    LazyLock::force(&store::SIZE_BYTES);
    LazyLock::force(&directory::USERS);
    LazyLock::force(&directory::BOTS);
    LazyLock::force(&directory::NETWORKS);
    LazyLock::force(&admin::LOGINS);
    LazyLock::force(&admin::AUDIT_EVENTS);
    LazyLock::force(&http::REQUESTS);
    LazyLock::force(&http::DURATION);
    for t in ["websocket", "quic"] {
        relay::CONNECTED.with_label_values(&[t]);
        relay::DELIVERED.with_label_values(&[t]);
    }
    LazyLock::force(&relay::ACCEPTED);
    LazyLock::force(&relay::REFUSED);
    LazyLock::force(&relay::ACKED);
    LazyLock::force(&relay::EXPIRED);
    LazyLock::force(&relay::MAILBOX_ENTRIES);
    LazyLock::force(&relay::DELIVERY_SECONDS);
    for t in ["udp", "tcp", "tls"] {
        calling::ALLOCATIONS_ACTIVE.with_label_values(&[t]);
        calling::ALLOCATIONS.with_label_values(&[t]);
        for d in ["to_peer", "to_client"] {
            calling::PACKETS.with_label_values(&[d, t]);
            calling::BYTES.with_label_values(&[d, t]);
        }
    }
    LazyLock::force(&calling::DROPPED);
    LazyLock::force(&calling::AUTH_FAILURES);
    LazyLock::force(&calling::DENIED_PEERS);
    LazyLock::force(&calling::QUOTA_REFUSALS);
    LazyLock::force(&calling::RATE_LIMITED);
    LazyLock::force(&calling::CALLS);
    LazyLock::force(&calling::AMPLIFICATION_REFUSED);
}

/// The text exposition of every registered metric.
pub fn render() -> String {
    let mut buf = Vec::new();
    TextEncoder::new()
        .encode(&REGISTRY.gather(), &mut buf)
        .expect("text encoding cannot fail");
    String::from_utf8(buf).expect("metrics are UTF-8")
}

/// Middleware: count every request by its route pattern (never the raw path, so the
/// label set stays bounded) and observe its latency.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let result = next.call(req).await;
    let status = match &result {
        Ok(res) => res.status().as_u16(),
        Err(e) => e.as_response_error().status_code().as_u16(),
    };
    http::REQUESTS
        .with_label_values(&[route.as_str(), method.as_str(), &status.to_string()])
        .inc();
    http::DURATION
        .with_label_values(&[route.as_str(), method.as_str()])
        .observe(started.elapsed().as_secs_f64());
    result
}
