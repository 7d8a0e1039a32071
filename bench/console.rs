//! The console's team directory page (`GET /console/networks/{id}/users`, 50 rows,
//! server-rendered HTML) under load from `wrk`, on a network of 100,000 users: the first
//! page, and a search for text only one user has (every entry of the name index is
//! read to find it, so this is the slowest directory page there is). Every console page view writes
//! an audit event (ListUsers, group-committed), so that is part of what is measured.
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
const WRK_THREADS: u32 = 2;
const WRK_CONNECTIONS: u32 = 16;
/// The search reads the whole name index: fewer connections, and a timeout long enough
/// that wrk measures each answer instead of counting it as a timeout.
const SEARCH_CONNECTIONS: u32 = 2;
const WRK_TIMEOUT: &str = "30s";
const WRK_SECONDS: u32 = 10;
const WARMUP_SECONDS: u32 = 3;
/// The console's session cookie (`console::cookie::SESSION`).
const COOKIE: &str = "outpost_console";

fn main() -> std::process::ExitCode {
    common::main_with(run)
}

fn run_wrk(
    wrk: &PathBuf,
    token: &str,
    url: &str,
    seconds: u32,
    connections: u32,
) -> Result<WrkResult> {
    let args = [
        format!("-t{}", WRK_THREADS.min(connections)),
        format!("-c{connections}"),
        format!("-d{seconds}s"),
        format!("--timeout={WRK_TIMEOUT}"),
        "--latency".to_string(),
    ];
    println!("  $ wrk {} -H \"Cookie: {COOKIE}=…\" {url}", args.join(" "));
    let out = Command::new(wrk)
        .args(&args)
        .arg("-H")
        .arg(format!("Cookie: {COOKIE}={token}"))
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

/// GET a console page once with the session cookie: it must be a 200 page holding `want`
/// (a 303 to the sign-in page would count as a success for wrk).
fn check_page(ca: &std::path::Path, token: &str, url: &str, want: &str) -> Result<()> {
    let pem = std::fs::read(ca)?;
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem)?)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let started = std::time::Instant::now();
    let (status, body) = rt.block_on(async {
        let r = http
            .get(url)
            .header("Cookie", format!("{COOKIE}={token}"))
            .send()
            .await?;
        let s = r.status().as_u16();
        Ok::<_, reqwest::Error>((s, r.text().await?))
    })?;
    if status != 200 || !body.contains(want) {
        bail!("GET {url} answered {status} without {want:?}");
    }
    let rows = body.matches("<tr><td>").count();
    println!(
        "  {url}: 200, {rows} rows, in {:.0} ms",
        common::ms(started.elapsed())
    );
    Ok(())
}

fn report(label: &str, r: &WrkResult) {
    println!(
        "  {label}: {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms, {} requests, {} errors",
        r.requests_per_second,
        r.p50_ms,
        r.p99_ms,
        r.requests,
        r.errors()
    );
}

fn run() -> Result<String> {
    println!("outpost console benchmark ({})", common::OUTPOST);
    let Some(wrk) = find_wrk() else {
        bail!(
            "this benchmark needs wrk (https://github.com/wg/wrk), which is not on the PATH; \
             install it with `sudo apt-get install wrk` (Debian/Ubuntu) and run it again"
        );
    };
    let users = BATCHES * PER_BATCH;
    let dir = temp_data_dir("console")?;
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
    let token = client.token()?.to_string();
    let page = format!("{}/console/networks/{net}/users", client.base());
    // Only one user's e-mail contains this (the last one's).
    let rare = common::email("user", users - 1);
    let search = format!("{page}?search={}", rare.replace('@', "%40"));
    check_page(&server.ca_file(), &token, &page, "Team directory")?;
    check_page(&server.ca_file(), &token, &search, &rare)?;

    println!("warm-up ({WARMUP_SECONDS} s, first page, not counted)");
    run_wrk(&wrk, &token, &page, WARMUP_SECONDS, WRK_CONNECTIONS)?;
    println!("directory page, first 50 of {users} users");
    let first = run_wrk(&wrk, &token, &page, WRK_SECONDS, WRK_CONNECTIONS)?;
    report("first page", &first);
    println!("search for one user among {users}");
    let found = run_wrk(&wrk, &token, &search, WRK_SECONDS, SEARCH_CONNECTIONS)?;
    report("search", &found);

    drop(client);
    let stop = server.stop()?;
    println!("stopped cleanly in {:.0} ms", common::ms(stop));
    Ok(format!(
        "console_users={users} directory_rps={:.0} directory_p99_ms={:.2} search_rps={:.0} \
         search_p99_ms={:.2} directory_errors={} search_errors={} wrk_threads={WRK_THREADS} \
         wrk_connections={WRK_CONNECTIONS} search_connections={SEARCH_CONNECTIONS} wrk_seconds={WRK_SECONDS}",
        first.requests_per_second,
        first.p99_ms,
        found.requests_per_second,
        found.p99_ms,
        first.errors(),
        found.errors(),
    ))
}
