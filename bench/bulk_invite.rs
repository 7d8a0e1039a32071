//! Bulk invite of 10,000 users from one CSV file, end to end as the admin console would
//! do it: the HTTPS upload, parsing, validating every row, one durable commit of all of
//! them (and the audit event), and the response — timed from sending the request to
//! having read the whole response.
//!
//! Each run invites into a network of its own (created through the API), so no e-mail
//! collides; all runs share one server, so the store grows by 10,000 users per run.

#[allow(dead_code)]
mod common;

use anyhow::{Context, Result, bail};
use common::{Client, Server, invite_file, min_median_max, temp_data_dir};

const USERS: usize = 10_000;
const RUNS: usize = 5;

fn main() -> std::process::ExitCode {
    common::main_with(run)
}

fn run() -> Result<String> {
    println!("outpost bulk invite benchmark ({})", common::OUTPOST);
    let dir = temp_data_dir("bulk-invite")?;
    let mut server = Server::start(&dir.path().join("data"))?;
    let mut client = Client::new(&mut server)?;
    client.sign_in()?;
    println!(
        "server at {}; {RUNS} runs of {USERS} users, each into a fresh network",
        client.base()
    );

    let mut seconds = Vec::with_capacity(RUNS);
    for i in 1..=RUNS {
        let net = client.create_network(&format!("bench-invite-{i}"))?;
        let (took, bytes) = invite_file(&client, &net, &format!("run{i}-"), 0, USERS)
            .with_context(|| format!("run {i}"))?;
        let s = took.as_secs_f64();
        let in_net = client.user_count(&net)?;
        if in_net != USERS as u64 {
            bail!("network {net} holds {in_net} users after run {i}, not {USERS}");
        }
        println!(
            "  run {i}/{RUNS}: {USERS} users ({:.0} KiB of CSV) into network {net} in {s:.3} s \
             = {:.0} users/s",
            bytes as f64 / 1024.0,
            USERS as f64 / s
        );
        seconds.push(s);
    }
    drop(client);
    server.stop()?;

    let (lo, med, hi) = min_median_max(&seconds);
    let rate = USERS as f64 / med;
    println!(
        "summary: {USERS} users per file: min {lo:.3} / median {med:.3} / max {hi:.3} s; \
         {rate:.0} users/s at the median"
    );
    Ok(format!(
        "bulk_invite_users={USERS} bulk_invite_runs={RUNS} bulk_invite_seconds_min={lo:.3} \
         bulk_invite_seconds_median={med:.3} bulk_invite_seconds_max={hi:.3} \
         bulk_invite_users_per_second={rate:.0}"
    ))
}
