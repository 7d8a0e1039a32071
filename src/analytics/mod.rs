//! Analytics (PRODUCT.md F12, reference §20): the daily aggregates the relay records
//! ([`daily`]: messages, files and active users, counted in memory and flushed to the
//! store periodically, never a store write per message) and the report the console
//! and the admin API show ([`report`]: overview, members, messages, by UTC day, week
//! or month, with CSV export of the data points).

pub mod chart;
pub mod daily;
pub mod report;
