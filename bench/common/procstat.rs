//! CPU time and resident memory of a process and its descendants, from `/proc`
//! (Linux only): enough to say how many cores a server used over a measured window
//! and how much memory it held.

use std::collections::HashMap;
use std::time::Instant;

/// Clock ticks per second of `utime`/`stime` in `/proc/PID/stat`.
pub fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// (parent pid, utime + stime in ticks) of one process.
fn stat(pid: u32) -> Option<(u32, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; the fields follow the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): ppid is field 4, utime 14, stime 15.
    let ppid = f.get(1)?.parse().ok()?;
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((ppid, utime + stime))
}

/// `pid` and every process descending from it.
pub fn tree(pid: u32) -> Vec<u32> {
    let mut parent: HashMap<u32, u32> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            if let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok())
                && let Some((pp, _)) = stat(p)
            {
                parent.insert(p, pp);
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let cur = out[i];
        for (&p, &pp) in &parent {
            if pp == cur && !out.contains(&p) {
                out.push(p);
            }
        }
        i += 1;
    }
    out
}

/// CPU ticks (user + system) used so far by `pid` and its descendants.
pub fn tree_cpu_ticks(pid: u32) -> u64 {
    tree(pid)
        .into_iter()
        .filter_map(|p| stat(p).map(|s| s.1))
        .sum()
}

/// A `VmRSS:`-style field of `/proc/PID/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Resident memory of `pid` and its descendants, in KiB.
pub fn tree_rss_kib(pid: u32) -> u64 {
    tree(pid)
        .into_iter()
        .filter_map(|p| status_kib(p, "VmRSS:"))
        .sum()
}

/// Peak resident memory of `pid` alone, in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:").unwrap_or(0)
}

/// CPU ticks (user + system) used so far by `pid` alone (all its threads).
pub fn cpu_ticks(pid: u32) -> u64 {
    stat(pid).map(|s| s.1).unwrap_or(0)
}

/// Cores a process (or a process tree) used between [`CpuMeter::start`] and
/// [`CpuMeter::cores`].
pub struct CpuMeter {
    pid: u32,
    tree: bool,
    ticks: u64,
    threads: HashMap<u32, (String, u64)>,
    at: Instant,
}

impl CpuMeter {
    /// `pid` and its descendants (a server that runs helper processes).
    pub fn tree(pid: u32) -> CpuMeter {
        CpuMeter::new(pid, true)
    }

    /// `pid` alone (this benchmark: its children are the servers it measures).
    pub fn process(pid: u32) -> CpuMeter {
        CpuMeter::new(pid, false)
    }

    fn new(pid: u32, tree: bool) -> CpuMeter {
        CpuMeter {
            pid,
            tree,
            ticks: if tree {
                tree_cpu_ticks(pid)
            } else {
                cpu_ticks(pid)
            },
            threads: threads(pid),
            at: Instant::now(),
        }
    }

    /// Average cores busy since the start (1.0 = one core all the time).
    pub fn cores(&self) -> f64 {
        let now = if self.tree {
            tree_cpu_ticks(self.pid)
        } else {
            cpu_ticks(self.pid)
        };
        let used = now.saturating_sub(self.ticks) as f64 / clock_ticks();
        let secs = self.at.elapsed().as_secs_f64();
        if secs > 0.0 { used / secs } else { 0.0 }
    }

    /// The busiest threads of `pid` since the start, as (name, cores), busiest first.
    pub fn busiest_threads(&self, n: usize) -> Vec<(String, f64)> {
        let secs = self.at.elapsed().as_secs_f64().max(1e-9);
        let mut by_name: HashMap<String, f64> = HashMap::new();
        for (tid, (name, ticks)) in threads(self.pid) {
            let before = self.threads.get(&tid).map(|t| t.1).unwrap_or(0);
            let cores = ticks.saturating_sub(before) as f64 / clock_ticks() / secs;
            // Threads of a pool share a name: show the pool's sum and its size.
            *by_name.entry(name).or_default() += cores;
        }
        let mut v: Vec<(String, f64)> = by_name.into_iter().collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v.truncate(n);
        v
    }
}

/// Every thread of `pid`: id → (name, CPU ticks).
fn threads(pid: u32) -> HashMap<u32, (String, u64)> {
    let mut out = HashMap::new();
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for e in dir.flatten() {
            let Some(tid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")) else {
                continue;
            };
            let (Some(open), Some(close)) = (s.find('('), s.rfind(')')) else {
                continue;
            };
            let name = s[open + 1..close].to_string();
            let f: Vec<&str> = s[close + 2..].split_whitespace().collect();
            let ticks = f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
                + f.get(12).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0);
            out.insert(tid, (name, ticks));
        }
    }
    out
}

/// Busy and total CPU ticks of the whole machine so far (`/proc/stat`).
fn machine_ticks() -> (u64, u64) {
    let Ok(s) = std::fs::read_to_string("/proc/stat") else {
        return (0, 0);
    };
    let Some(line) = s.lines().find(|l| l.starts_with("cpu ")) else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Cores busy on the whole machine (every process) over a window.
pub struct MachineMeter {
    busy: u64,
    at: Instant,
}

impl MachineMeter {
    pub fn start() -> MachineMeter {
        MachineMeter {
            busy: machine_ticks().0,
            at: Instant::now(),
        }
    }

    pub fn cores(&self) -> f64 {
        let used = machine_ticks().0.saturating_sub(self.busy) as f64 / clock_ticks();
        let secs = self.at.elapsed().as_secs_f64();
        if secs > 0.0 { used / secs } else { 0.0 }
    }
}
