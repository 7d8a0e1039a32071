//! `outpost retention …`: switch data retention on and off and show the exporter's
//! state, through a running server's admin API (UpdateDataRetention, GetDataRetention;
//! compliance or owner role for the switch).

use super::client::{Client, Connection};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

#[derive(Debug, Args)]
pub struct RetentionArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// Print the API's JSON answer.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: RetentionCommand,
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Turn retention on: creates the compliance key pair (sealed with the configured
    /// passphrase), publishes the compliance member and tells every device.
    Enable {
        /// Network id [default: the first network].
        #[arg(long)]
        network: Option<String>,
    },
    /// Turn retention off; everything journalled is kept.
    Disable {
        #[arg(long)]
        network: Option<String>,
    },
    /// Whether retention is on, the compliance device, the exporter's state and events.
    Status {
        #[arg(long)]
        network: Option<String>,
    },
    /// Export the journal of a time range as jsonl, csv, eml or rsmf (eDiscovery), from
    /// the retention folder on this machine.
    Export(super::retention_export::ExportArgs),
}

async fn network_of(c: &Client, n: Option<String>) -> Result<String> {
    if let Some(n) = n {
        return Ok(n);
    }
    let v = c.get("/networks").await?;
    let list = v.get("networks").or(v.get("items")).unwrap_or(&v);
    list.as_array()
        .and_then(|a| a.first())
        .and_then(|n| n["id"].as_str())
        .map(str::to_string)
        .context("no network found; pass --network")
}

fn print_state(v: &Value, json_out: bool) {
    if json_out {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
        return;
    }
    let on = v["enabled"].as_bool().unwrap_or(false);
    println!("retention: {}", if on { "on" } else { "off" });
    match v["compliance_device"]["device_id"].as_str() {
        Some(d) => println!("compliance device: {d}"),
        None => println!("compliance device: none"),
    }
    if let Some(x) = v.get("exporter") {
        let s = &x["status"];
        println!(
            "exporter: {}{}",
            if s["running"].as_bool() == Some(true) {
                "running"
            } else {
                "not running"
            },
            s["paused"]
                .as_str()
                .map(|p| format!(", paused: {p}"))
                .unwrap_or_default()
        );
        println!("key: {}", x["key"].as_str().unwrap_or("not opened"));
        println!("folder: {}", s["folder"].as_str().unwrap_or(""));
        println!("journalled since start: {}", s["journalled"]);
        if let Some(f) = s["current_file"].as_str() {
            println!("current file: messages/{f}");
        }
        for e in x["events"].as_array().into_iter().flatten().rev().take(10) {
            println!(
                "  {} {:8} {}",
                e["dateTime"].as_str().unwrap_or(""),
                e["severity"].as_str().unwrap_or(""),
                e["message"].as_str().unwrap_or("")
            );
        }
    }
}

pub async fn run(args: RetentionArgs) -> Result<i32> {
    if let RetentionCommand::Export(e) = &args.command {
        return super::retention_export::export(e, args.json);
    }
    let c = Client::new(&args.conn)?;
    let (net, body) = match args.command {
        RetentionCommand::Export(_) => unreachable!("handled above"),
        RetentionCommand::Enable { network } => (network_of(&c, network).await?, Some(true)),
        RetentionCommand::Disable { network } => (network_of(&c, network).await?, Some(false)),
        RetentionCommand::Status { network } => (network_of(&c, network).await?, None),
    };
    let path = format!("/networks/{net}/data-retention");
    let v = match body {
        Some(enabled) => {
            c.json(Method::PUT, &path, Some(&json!({ "enabled": enabled })))
                .await?
        }
        None => c.get(&path).await?,
    };
    print_state(&v, args.json);
    Ok(0)
}
