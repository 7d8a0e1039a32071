//! `GET /admin/api/v1/networks/{id}/users` (one page of 100) under load from `wrk`, on a
//! network of 100,000 users: the first page, and a deep page (the cursor the API hands
//! out halfway through the directory). Every admin API call, reads included, writes an
//! audit event (group-committed in the background), so that is part of what is measured.
//!
//! wrk runs on the same 2-core machine as the server, so the figures are for both
//! sharing it. wrk speaks HTTPS but does not check certificates.

#[allow(dead_code)]
mod common;

use anyhow::{Context, Result, bail};
use common::wrk::{WrkResult, find_wrk, parse_wrk};
use common::{Client, Server, temp_data_dir};
use std::path::PathBuf;
use std::process::Command;

const BATCHES: usize = 10;
const PER_BATCH: usize = 10_000;
const PAGE: usize = 100;
const WRK_THREADS: u32 = 2;
const WRK_CONNECTIONS: u32 = 32;
const WRK_SECONDS: u32 = 15;
const WARMUP_SECONDS: u32 = 5;

fn main() -> std::process::ExitCode {
    common::main_with(run)
}

fn run_wrk(wrk: &PathBuf, token: &str, url: &str, seconds: u32) -> Result<WrkResult> {
    let args = [
        format!("-t{WRK_THREADS}"),
        format!("-c{WRK_CONNECTIONS}"),
        format!("-d{seconds}s"),
        "--latency".to_string(),
    ];
    println!(
        "  $ wrk {} -H \"Authorization: Bearer …\" {url}",
        args.join(" ")
    );
    let out = Command::new(wrk)
        .args(&args)
        .arg("-H")
        .arg(format!("Authorization: Bearer {token}"))
        .arg(url)
        .output()
        .with_context(|| format!("cannot run {}", wrk.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for line in stdout.lines() {
        println!("    | {line}");
    }
    parse_wrk(&stdout)
}

fn report(label: &str, r: &WrkResult) {
    println!(
        "  {label}: {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms, {} requests, {} non-2xx, {} socket errors",
        r.requests_per_second, r.p50_ms, r.p99_ms, r.requests, r.non_2xx, r.socket_errors
    );
}

fn run() -> Result<String> {
    println!("outpost list-users benchmark ({})", common::OUTPOST);
    let Some(wrk) = find_wrk() else {
        bail!(
            "this benchmark needs wrk (https://github.com/wg/wrk), which is not on the PATH; \
             install it with `sudo apt-get install wrk` (Debian/Ubuntu) and run it again"
        );
    };
    let users = BATCHES * PER_BATCH;
    let dir = temp_data_dir("list-users")?;
    let mut server = Server::start(&dir.path().join("data"))?;
    let mut client = Client::new(&mut server)?;
    client.sign_in()?;
    let net = client.first_network()?;
    println!(
        "server at {}; inviting {users} users into network {net}",
        client.base()
    );
    common::populate(&client, &net, "user", BATCHES, PER_BATCH)?;
    let n = client.user_count(&net)?;
    if n != users as u64 {
        bail!("the network holds {n} users, not {users}");
    }

    // The cursor the API hands out after the first half of the directory.
    let half = users / 2;
    let mut cursor: Option<String> = None;
    let mut seen = 0;
    while seen < half {
        let after = cursor
            .as_deref()
            .map(|c| format!("&cursor={c}"))
            .unwrap_or_default();
        let page = client.get(&format!("/networks/{net}/users?limit=1000{after}"))?;
        seen += page["items"].as_array().map_or(0, Vec::len);
        cursor = page["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            bail!("the directory ended after {seen} users");
        }
    }
    let cursor = cursor.expect("set in the loop");
    let list = format!("{}/admin/api/v1/networks/{net}/users", client.base());
    let first_url = format!("{list}?limit={PAGE}");
    let deep_url = format!("{list}?limit={PAGE}&cursor={cursor}");
    for (label, path, first_email) in [
        (
            "first page",
            format!("/networks/{net}/users?limit={PAGE}"),
            common::email("user", 0),
        ),
        (
            "deep page",
            format!("/networks/{net}/users?limit={PAGE}&cursor={cursor}"),
            common::email("user", seen),
        ),
    ] {
        let page = client.get(&path)?;
        let items = page["items"].as_array().map_or(0, Vec::len);
        let got = page["items"][0]["username"].as_str().unwrap_or("?");
        println!("  {label}: {items} users, starting at {got} (expected {first_email})");
        if items != PAGE {
            bail!("the {label} holds {items} users, not {PAGE}");
        }
    }

    let token = client.token()?.to_string();
    println!("warm-up ({WARMUP_SECONDS} s, first page, not counted)");
    run_wrk(&wrk, &token, &first_url, WARMUP_SECONDS)?;
    println!("first page of {users} users");
    let first = run_wrk(&wrk, &token, &first_url, WRK_SECONDS)?;
    report("first page", &first);
    println!("deep page (after {seen} of {users} users)");
    let deep = run_wrk(&wrk, &token, &deep_url, WRK_SECONDS)?;
    report("deep page", &deep);

    drop(client);
    let stop = server.stop()?;
    println!("stopped cleanly in {:.0} ms", common::ms(stop));
    Ok(format!(
        "list_users={users} first_page_rps={:.0} first_page_p99_ms={:.2} deep_page_rps={:.0} \
         deep_page_p99_ms={:.2} first_page_errors={} deep_page_errors={} wrk_threads={WRK_THREADS} \
         wrk_connections={WRK_CONNECTIONS} wrk_seconds={WRK_SECONDS}",
        first.requests_per_second,
        first.p99_ms,
        deep.requests_per_second,
        deep.p99_ms,
        first.errors(),
        deep.errors(),
    ))
}
