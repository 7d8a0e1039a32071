//! The exporter's Prometheus counters, named after the reference's metrics
//! (PRODUCT.md F8; the mapping is in README's retention section):
//!
//! | reference               | outpost                                        |
//! |-------------------------|------------------------------------------------|
//! | `Messages_Rx`           | `outpost_retention_messages_rx_total`          |
//! | `Messages_Rx_Failed`    | `outpost_retention_messages_rx_failed_total`   |
//! | `Messages_Saved`        | `outpost_retention_messages_saved_total`       |
//! | `Messages_Saved_Failed` | `outpost_retention_messages_saved_failed_total`|
//! | `Files_Saved`           | `outpost_retention_files_saved_total`          |
//! | `Files_Saved_Bytes`     | `outpost_retention_files_saved_bytes_total`    |
//! | `Files_Saved_Failed`    | `outpost_retention_files_saved_failed_total`   |
//! | `Logins`                | `outpost_retention_logins_total`               |
//! | `Login_Failures`        | `outpost_retention_login_failures_total`       |
//! | `S3_Post_Errors`        | `outpost_retention_s3_post_errors_total`       |
//! | `Watchdog_Failures`     | `outpost_retention_watchdog_failures_total`    |
//! | `Watchdog_Warnings`     | `outpost_retention_watchdog_warnings_total`    |
//!
//! A "login" is the exporter opening a network's compliance key with the passphrase.

use prometheus::IntCounter;
use std::sync::LazyLock;

fn counter(name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid counter");
    crate::metrics::REGISTRY
        .register(Box::new(c.clone()))
        .expect("metric names are unique");
    c
}

macro_rules! counters {
    ($($id:ident = $name:literal, $help:literal;)*) => {
        $(pub static $id: LazyLock<IntCounter> = LazyLock::new(|| counter($name, $help));)*
        /// Register every counter (so a scrape shows them at 0).
        pub fn init() {
            $(LazyLock::force(&$id);)*
        }
    };
}

counters! {
    MESSAGES_RX = "outpost_retention_messages_rx_total", "Compliance mailbox entries the exporter read (Messages_Rx).";
    MESSAGES_RX_FAILED = "outpost_retention_messages_rx_failed_total", "Entries that could not be decrypted or verified; journalled with an error field (Messages_Rx_Failed).";
    MESSAGES_SAVED = "outpost_retention_messages_saved_total", "Records durably written to the journal (Messages_Saved).";
    MESSAGES_SAVED_FAILED = "outpost_retention_messages_saved_failed_total", "Records whose write failed and is retried (Messages_Saved_Failed).";
    FILES_SAVED = "outpost_retention_files_saved_total", "Attachments decrypted and saved (Files_Saved).";
    FILES_SAVED_BYTES = "outpost_retention_files_saved_bytes_total", "Bytes of attachments saved (Files_Saved_Bytes).";
    FILES_SAVED_FAILED = "outpost_retention_files_saved_failed_total", "Attachments that could not be fetched or decrypted (Files_Saved_Failed).";
    LOGINS = "outpost_retention_logins_total", "Compliance keys opened with the passphrase (Logins).";
    LOGIN_FAILURES = "outpost_retention_login_failures_total", "Compliance keys the passphrase did not open (Login_Failures).";
    S3_POST_ERRORS = "outpost_retention_s3_post_errors_total", "Failed uploads to the bucket (S3_Post_Errors).";
    WATCHDOG_FAILURES = "outpost_retention_watchdog_failures_total", "Pauses of the exporter: the folder or a sink failed (Watchdog_Failures).";
    WATCHDOG_WARNINGS = "outpost_retention_watchdog_warnings_total", "Warnings of the exporter (Watchdog_Warnings).";
}
