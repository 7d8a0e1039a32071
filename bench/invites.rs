//! Invitations by mail, end to end (issue 5): 10,000 people invited from one CSV file
//! with mail on, and their invitation mails delivered to a real local SMTP server
//! (`tests/support/smtp_sink.py`, aiosmtpd, one file per mail).
//!
//! Two figures: the time to *queue* — the bulk-invite request, which creates the pending
//! users, their one-time registration links and one queued mail each in one durable
//! transaction — and the time to *deliver* — from the request's answer until the SMTP
//! server holds every mail, sent one by one by the outbox worker over a reused SMTP
//! session. The server's and the sink's CPU over the delivery are printed beside, since
//! either may be what limits it. Afterwards the benchmark checks that the outbox lists
//! every mail as `sent`, that exactly one mail arrived per person (no duplicate
//! `Message-ID`, every invited address once), and that they are the outbox's mails.

#[allow(dead_code)]
mod common;

use anyhow::{Context, Result, bail};
use common::procstat::{self, CpuMeter, MachineMeter};
use common::smtp_sink::{self, SmtpSink};
use common::{Client, Server, invite_file, temp_data_dir};
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

const DEFAULT_USERS: usize = 10_000;
/// How often the sink's folder is counted.
const POLL: Duration = Duration::from_millis(100);
/// How often delivery progress is printed.
const REPORT_EVERY: Duration = Duration::from_secs(10);
/// Delivery fails if no new mail arrives for this long.
const STALL_LIMIT: Duration = Duration::from_secs(60);
/// How long the outbox may take to record the last mails as sent once they arrived.
const RECORD_LIMIT: Duration = Duration::from_secs(30);
/// The invited addresses: `invitee000000@bench.example.com`, …
const PREFIX: &str = "invitee";

fn main() -> std::process::ExitCode {
    common::main_with(run)
}

/// `INVITES_BENCH_USERS`, default 10,000.
fn users() -> Result<usize> {
    match std::env::var("INVITES_BENCH_USERS") {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => bail!("INVITES_BENCH_USERS={v:?} is not a positive whole number"),
        },
        Err(_) => Ok(DEFAULT_USERS),
    }
}

/// The configuration file: mail on, to the sink over plain SMTP on loopback. A
/// temporary failure is retried after 1 s (not the default 30 s) so that one would show
/// as a slower run, not a stalled one; `retried` in the figures counts them.
fn config(port: u16) -> String {
    format!(
        r#"# Written by bench/invites for one run.
[mail]
transport = "smtp"
from = "Outpost <outpost@bench.example.com>"
smtp_host = "127.0.0.1"
smtp_port = {port}
smtp_security = "none"
smtp_hello_name = "outpost.bench"
smtp_timeout_secs = 30
retry_initial_secs = 1
retry_max_secs = 10
"#
    )
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn cpu_seconds(ticks: u64) -> f64 {
    ticks as f64 / procstat::clock_ticks()
}

fn run() -> Result<String> {
    let users = users()?;
    println!(
        "outpost invitations-by-mail benchmark ({})",
        common::OUTPOST
    );
    println!(
        "load average before: {} ({} CPUs)",
        load_average(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let sink = SmtpSink::start().context("cannot start the SMTP sink")?;
    println!(
        "SMTP sink (aiosmtpd, {}) on 127.0.0.1:{}, writing to {}",
        smtp_sink::python()?.display(),
        sink.port(),
        sink.mail_dir().display()
    );

    let dir = temp_data_dir("invites")?;
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, config(sink.port()))
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    let mut server = Server::start_with(&dir.path().join("data"), Some(&config_path))
        .context("outpost did not start with mail on")?;
    let mut client = Client::new(&mut server)?;
    client.sign_in()?;
    let net = client.first_network()?;
    let pid = server.pid();
    println!(
        "server at {} (pid {pid}); inviting {users} people into network {net}",
        client.base()
    );

    // Queue: one bulk invite, one transaction.
    let cpu_before_queue = procstat::cpu_ticks(pid);
    let (queue, csv_bytes) =
        invite_file(&client, &net, PREFIX, 0, users).context("the bulk invite failed")?;
    let answered = Instant::now();
    let queue_cpu = cpu_seconds(procstat::cpu_ticks(pid).saturating_sub(cpu_before_queue));

    // Deliver: from the answer until the sink holds every mail.
    let server_cpu = procstat::cpu_ticks(pid);
    let sink_cpu = procstat::cpu_ticks(sink.pid());
    let own_cpu = procstat::cpu_ticks(std::process::id());
    let threads = CpuMeter::process(pid);
    let machine = MachineMeter::start();
    let at_answer = sink.count()?;
    println!(
        "  queued {users} invitations ({:.0} KiB of CSV) in {:.3} s = {:.0}/s; server CPU \
         {queue_cpu:.2} s; {at_answer} already at the SMTP server",
        csv_bytes as f64 / 1024.0,
        queue.as_secs_f64(),
        users as f64 / queue.as_secs_f64()
    );
    let mut last = at_answer;
    let mut last_change = answered;
    let mut next_report = answered + REPORT_EVERY;
    let deliver = loop {
        let n = sink.count()?;
        let now = Instant::now();
        if n >= users {
            break now.duration_since(answered);
        }
        if n != last {
            last = n;
            last_change = now;
        } else if now.duration_since(last_change) > STALL_LIMIT {
            bail!(
                "delivery stalled: {n} of {users} mails at the SMTP server, none new for {} s\n\
                 the sink's log:\n{}\nthe server's last lines:\n{}",
                STALL_LIMIT.as_secs(),
                sink.log(),
                server.stderr_tail()
            );
        }
        if now >= next_report {
            let s = now.duration_since(answered).as_secs_f64();
            println!(
                "  {s:>5.1} s: {n:>6} delivered ({:.0}/s so far)",
                n as f64 / s
            );
            next_report += REPORT_EVERY;
        }
        std::thread::sleep(POLL);
    };
    let server_cpu = cpu_seconds(procstat::cpu_ticks(pid).saturating_sub(server_cpu));
    let sink_cpu = cpu_seconds(procstat::cpu_ticks(sink.pid()).saturating_sub(sink_cpu));
    let own_cpu = cpu_seconds(procstat::cpu_ticks(std::process::id()).saturating_sub(own_cpu));
    let machine_cores = machine.cores();
    let busiest = threads.busiest_threads(5);
    let rss_mib = procstat::tree_rss_kib(pid) as f64 / 1024.0;
    let peak_rss_mib = procstat::peak_rss_kib(pid) as f64 / 1024.0;
    let sink_rss_mib = procstat::tree_rss_kib(sink.pid()) as f64 / 1024.0;
    let secs = deliver.as_secs_f64();
    let rate = users as f64 / secs;
    let other_cores = (machine_cores - (server_cpu + sink_cpu + own_cpu) / secs).max(0.0);
    println!(
        "  delivered {users} mails in {secs:.2} s = {rate:.0} mails/s; CPU over the delivery: \
         server {server_cpu:.2} s ({:.2} cores), SMTP sink {sink_cpu:.2} s ({:.2} cores), \
         benchmark {own_cpu:.2} s, everything else {other_cores:.2} cores",
        server_cpu / secs,
        sink_cpu / secs
    );
    println!(
        "  server's busiest threads: {}",
        busiest
            .iter()
            .map(|(name, cores)| format!("{name} {cores:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  server RSS {rss_mib:.1} MiB (peak {peak_rss_mib:.1}); sink RSS {sink_rss_mib:.1} MiB"
    );

    let (retried, outbox_ids) = check_outbox(&client, &net, users)?;
    let message_ids = check_mails(&sink, users)?;
    if message_ids != outbox_ids {
        bail!("the Message-IDs at the SMTP server are not the outbox's");
    }
    println!(
        "  checked: the outbox lists {users} invitations sent ({} after a retry); the SMTP \
         server holds exactly {users} mails, one per invited address, no Message-ID twice",
        retried
    );

    drop(client);
    server.stop()?;
    sink.stop()?;
    println!("load average after: {}", load_average());

    Ok(format!(
        "invites_users={users} queue_seconds={:.3} deliver_seconds={secs:.3} \
         mails_per_second={rate:.0} queue_server_cpu_seconds={queue_cpu:.2} \
         server_cpu_seconds={server_cpu:.2} server_cpu_cores={:.2} \
         server_rss_mib={rss_mib:.1} server_peak_rss_mib={peak_rss_mib:.1} \
         sink_cpu_seconds={sink_cpu:.2} sink_cpu_cores={:.2} other_cpu_cores={other_cores:.2} \
         delivered_before_answer={at_answer} retried={}",
        queue.as_secs_f64(),
        server_cpu / secs,
        sink_cpu / secs,
        retried
    ))
}

/// Waits until the outbox lists `users` mails as sent (the last ones are recorded just
/// after the SMTP server accepted them), and none queued or failed; checks they are the
/// network's invitations. Returns how many needed more than one attempt, and their
/// Message-IDs.
fn check_outbox(client: &Client, net: &str, users: usize) -> Result<(usize, HashSet<String>)> {
    let deadline = Instant::now() + RECORD_LIMIT;
    let sent = loop {
        let sent = client
            .outbox_all("sent")
            .context("cannot list the sent mails")?;
        if sent.len() >= users || Instant::now() > deadline {
            break sent;
        }
        std::thread::sleep(POLL);
    };
    let (queued, _) = client.outbox_page("queued", None, 1000)?;
    let (failed, _) = client.outbox_page("failed", None, 1000)?;
    if sent.len() != users || !queued.is_empty() || !failed.is_empty() {
        bail!(
            "the outbox lists {} sent, {}{} queued and {}{} failed mails, not {users} sent{}",
            sent.len(),
            queued.len(),
            if queued.len() == 1000 { "+" } else { "" },
            failed.len(),
            if failed.len() == 1000 { "+" } else { "" },
            failed
                .first()
                .map(|m| format!(" (first failure: {})", m["last_error"]))
                .unwrap_or_default()
        );
    }
    let mut ids = HashSet::with_capacity(users);
    let mut message_ids = HashSet::with_capacity(users);
    let mut retried = 0;
    for m in &sent {
        if m["kind"] != "invitation" || m["network_id"] != net {
            bail!("the outbox holds a mail that is not an invitation into {net}: {m}");
        }
        let id = m["id"].as_str().context("a mail in the outbox has no id")?;
        let message_id = m["message_id"]
            .as_str()
            .with_context(|| format!("mail {id} has no message_id"))?;
        if !ids.insert(id.to_string()) || !message_ids.insert(message_id.to_string()) {
            bail!("the outbox lists mail {id} ({message_id}) twice");
        }
        if m["attempts"].as_u64() != Some(1) {
            retried += 1;
        }
    }
    Ok((retried, message_ids))
}

/// Checks the SMTP server holds exactly `users` mails, each with its own Message-ID,
/// addressed to each invited person once; returns the Message-IDs.
fn check_mails(sink: &SmtpSink, users: usize) -> Result<HashSet<String>> {
    let files = sink.files()?;
    if files.len() != users {
        bail!("the SMTP server holds {} mails, not {users}", files.len());
    }
    let mut message_ids = HashSet::with_capacity(users);
    let mut recipients = HashSet::with_capacity(users);
    for f in &files {
        let raw = read(f)?;
        let message_id = smtp_sink::header(&raw, "Message-ID")
            .with_context(|| format!("{} has no Message-ID", f.display()))?;
        if !message_ids.insert(message_id.clone()) {
            bail!(
                "Message-ID {message_id} arrived twice (again in {})",
                f.display()
            );
        }
        let to = smtp_sink::header(&raw, "X-RcptTo")
            .with_context(|| format!("{} has no X-RcptTo", f.display()))?;
        if !recipients.insert(to.to_ascii_lowercase()) {
            bail!("{to} got two mails (again in {})", f.display());
        }
    }
    let missing = (0..users)
        .map(|i| common::email(PREFIX, i))
        .find(|e| !recipients.contains(e));
    if let Some(e) = missing {
        bail!("no mail arrived for {e}");
    }
    Ok(message_ids)
}

fn read(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
