//! outpost: a self-hosted secure communications appliance in one binary.
//!
//! Parts (one folder each): `config` (settings), `store` (the embedded database),
//! `directory` (networks, groups, users, devices), `auth` (admin accounts, sessions,
//! roles), `audit` (the hash-chained admin log), `calling` (the TURN relay: so far its
//! codec and credentials), `admin` (the admin API), `metrics`, `server` (start-up, TLS,
//! listeners, shutdown), `client` (the reference messaging client of `docs/PROTOCOL.md`)
//! and `cli` (the command line).

pub mod admin;
pub mod analytics;
pub mod api;
pub mod audit;
pub mod auth;
pub mod calling;
pub mod cli;
pub mod client;
pub mod client_profile;
pub mod config;
pub mod console;
pub mod directory;
pub mod error;
pub mod html;
pub mod mail;
pub mod metrics;
pub mod pages;
pub mod relay;
pub mod server;
pub mod store;
pub mod system_status;
