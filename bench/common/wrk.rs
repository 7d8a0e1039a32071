//! wrk, the HTTP load generator the web benchmarks drive: finding it on the PATH and
//! reading its `--latency` report.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;

/// `wrk` on the PATH, if installed.
pub fn find_wrk() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("wrk"))
        .find(|p| p.is_file())
}

/// What one wrk run reported.
pub struct WrkResult {
    pub requests_per_second: f64,
    pub p99_ms: f64,
    pub p50_ms: f64,
    pub requests: u64,
    pub non_2xx: u64,
    pub socket_errors: u64,
}

impl WrkResult {
    /// Non-2xx answers and socket errors together.
    pub fn errors(&self) -> u64 {
        self.non_2xx + self.socket_errors
    }
}

/// A wrk duration such as `850.00us`, `12.34ms`, `1.02s` or `1.50m`, in milliseconds.
pub fn wrk_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = text.split_at(split);
    let v: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => v / 1000.0,
        "ms" => v,
        "s" => v * 1000.0,
        "m" => v * 60_000.0,
        "h" => v * 3_600_000.0,
        _ => return None,
    })
}

pub fn parse_wrk(out: &str) -> Result<WrkResult> {
    let mut r = WrkResult {
        requests_per_second: f64::NAN,
        p99_ms: f64::NAN,
        p50_ms: f64::NAN,
        requests: 0,
        non_2xx: 0,
        socket_errors: 0,
    };
    for line in out.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", v, ..] => r.requests_per_second = v.parse()?,
            ["99%", v, ..] => r.p99_ms = wrk_ms(v).context("cannot read the 99% latency")?,
            ["50%", v, ..] => r.p50_ms = wrk_ms(v).context("cannot read the 50% latency")?,
            [n, "requests", "in", ..] => r.requests = n.parse()?,
            ["Non-2xx", "or", "3xx", "responses:", n] => r.non_2xx = n.parse()?,
            ["Socket", "errors:", rest @ ..] => {
                // "connect 0, read 0, write 0, timeout 0"
                r.socket_errors = rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum();
            }
            _ => {}
        }
    }
    if r.requests_per_second.is_nan() || r.p99_ms.is_nan() {
        bail!("cannot find Requests/sec and the 99% latency in wrk's output:\n{out}");
    }
    Ok(r)
}
