//! Data retention export (PRODUCT.md F8): the network's announced compliance member
//! that journals every message, decrypted, and loses nothing.
//!
//! While retention is on, the relay refuses envelopes not sealed to the network's
//! compliance device (`crate::relay::compliance`). This part holds that device's
//! private keys (sealed at rest with the retention passphrase) and runs the exporter:
//! it reads the compliance device's mailbox in order, decrypts every envelope, appends
//! one JSON line per message ([`record::Record`]) to
//! `<folder>/messages/<base>-<UTC timestamp>.jsonl`, saves decrypted attachments under
//! `<folder>/attachments/`, fsyncs, and only then acknowledges the mailbox entries.
//! Journal files rotate by size and by time, each with a SHA-256 manifest, and every
//! finished file goes to the configured [`sink::Pipeline`] (local folder by default;
//! age encryption and an S3 bucket plug in there).
//!
//! Modules: [`record`] (the journal line), [`sink`] (where finished files go).

pub mod ediscovery;
pub mod record;
pub mod seal;
pub mod sink;
