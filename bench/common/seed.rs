//! Seeding a data folder for the messaging benchmarks, straight through the `outpost`
//! library while no server runs: active users in the first network, devices with
//! tokens and published keys, direct conversations and rooms.
//!
//! The first network and the owner are made by the server itself on its first start
//! ([`bootstrap`]), so seeding never competes with that code; [`seed`] then opens the
//! stopped server's store, writes in large transactions, and closes it again.

use super::Server;
use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use outpost::config::StoreConfig;
use outpost::directory::user::{self, User, UserKind};
use outpost::directory::{device, network};
use outpost::relay::conversation;
use outpost::store::{self, Store};
use rand::RngCore;
use std::path::Path;
use std::time::Instant;

/// Users written per transaction (with all their devices).
const USERS_PER_TX: usize = 200;
/// Conversations written per transaction.
const CONVERSATIONS_PER_TX: usize = 500;

/// What to create.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub users: usize,
    pub devices_per_user: usize,
    /// Direct conversations, as pairs of user indexes.
    pub directs: Vec<(usize, usize)>,
    /// Rooms, as lists of user indexes; the first is the creator (moderator).
    pub rooms: Vec<Vec<usize>>,
}

#[derive(Debug, Clone)]
pub struct SeededDevice {
    pub id: String,
    /// The `od_…` device token.
    pub token: String,
}

#[derive(Debug, Clone)]
pub struct SeededUser {
    pub id: String,
    pub username: String,
    pub devices: Vec<SeededDevice>,
}

#[derive(Debug, Clone)]
pub struct SeededConversation {
    pub id: String,
    /// Member user indexes, in the plan's order.
    pub members: Vec<usize>,
}

/// What was created, with the ids and tokens the clients need.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub network_id: String,
    pub users: Vec<SeededUser>,
    pub directs: Vec<SeededConversation>,
    pub rooms: Vec<SeededConversation>,
}

/// Start the server once on a fresh data folder (it creates the TLS identity, the
/// store, the owner and the first network) and stop it cleanly.
pub fn bootstrap(data_dir: &Path) -> Result<()> {
    let server = Server::start(data_dir)?;
    // The server says READY=1 a moment before it installs its SIGTERM handler; a
    // SIGTERM in between kills it uncleanly. Give it that moment.
    std::thread::sleep(std::time::Duration::from_millis(300));
    server.stop()?;
    Ok(())
}

fn random_b64(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::rng().fill_bytes(&mut b);
    STANDARD.encode(b)
}

/// Write `plan` into the (stopped) server's store in `data_dir`.
pub fn seed(data_dir: &Path, plan: &Plan) -> Result<Seeded> {
    let started = Instant::now();
    let path = data_dir.join(store::DB_FILE);
    let st = Store::open(&path, &StoreConfig::default())
        .map_err(|e| anyhow!("cannot open {}: {e}", path.display()))?;
    let result = seed_into(&st, plan);
    st.close();
    drop(st);
    let seeded = result?;
    println!(
        "  seeded {} users × {} devices, {} direct conversations, {} rooms in {:.1} s",
        plan.users,
        plan.devices_per_user,
        plan.directs.len(),
        plan.rooms.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(seeded)
}

fn seed_into(st: &Store, plan: &Plan) -> Result<Seeded> {
    let net = st
        .read(|tx| network::list(tx))?
        .into_iter()
        .next()
        .context("the store has no network: was the server started once?")?;
    let mut records: Vec<User> = Vec::with_capacity(plan.users);
    let mut users: Vec<SeededUser> = Vec::with_capacity(plan.users);
    let mut next = 0;
    while next < plan.users {
        let end = (next + USERS_PER_TX).min(plan.users);
        let batch = st.write_now(|tx| {
            let mut out = Vec::with_capacity(end - next);
            for i in next..end {
                let mut u = User::new(
                    &net.id,
                    UserKind::User,
                    super::email("seed", i),
                    net.default_group_id.clone(),
                );
                u.first_name = format!("Bench{i}");
                u.last_name = "User".into();
                u.registered = true;
                u.registered_at = Some(chrono::Utc::now());
                user::put(tx, None, &u)?;
                let mut devices = Vec::with_capacity(plan.devices_per_user);
                for d in 0..plan.devices_per_user {
                    let (dev, token) = device::register_with_token(
                        tx,
                        &u,
                        &format!("bench {d}"),
                        "cli",
                        "bench",
                        device::DeviceStatus::Active,
                    )?;
                    let dev = device::publish_keys(tx, dev, &random_b64(32), &random_b64(32))?;
                    devices.push(SeededDevice { id: dev.id, token });
                }
                out.push((u, devices));
            }
            Ok(out)
        })?;
        for (u, devices) in batch {
            users.push(SeededUser {
                id: u.id.clone(),
                username: u.username.clone(),
                devices,
            });
            records.push(u);
        }
        next = end;
    }

    let mut directs = Vec::with_capacity(plan.directs.len());
    for chunk in plan.directs.chunks(CONVERSATIONS_PER_TX) {
        let ids = st.write_now(|tx| {
            let mut ids = Vec::with_capacity(chunk.len());
            for &(a, b) in chunk {
                let (change, created) = conversation::open_direct(tx, &records[a], &records[b].id)?;
                if !created {
                    return Err(outpost::error::Error::internal(format!(
                        "users {a} and {b} already had a direct conversation"
                    )));
                }
                ids.push(change.after.map(|c| c.id).unwrap_or_default());
            }
            Ok(ids)
        })?;
        for (id, &(a, b)) in ids.into_iter().zip(chunk) {
            directs.push(SeededConversation {
                id,
                members: vec![a, b],
            });
        }
    }

    let mut rooms = Vec::with_capacity(plan.rooms.len());
    for (n, chunk) in plan.rooms.chunks(CONVERSATIONS_PER_TX).enumerate() {
        let ids = st.write_now(|tx| {
            let mut ids = Vec::with_capacity(chunk.len());
            for (k, members) in chunk.iter().enumerate() {
                let creator = &records[members[0]];
                let others: Vec<String> = members[1..]
                    .iter()
                    .map(|&m| records[m].id.clone())
                    .collect();
                let name = format!("bench room {}", n * CONVERSATIONS_PER_TX + k);
                let change = conversation::create_room(tx, creator, &name, "", &others)?;
                ids.push(change.after.map(|c| c.id).unwrap_or_default());
            }
            Ok(ids)
        })?;
        for (id, members) in ids.into_iter().zip(chunk) {
            rooms.push(SeededConversation {
                id,
                members: members.clone(),
            });
        }
    }
    if directs.iter().chain(&rooms).any(|c| c.id.is_empty()) {
        bail!("a seeded conversation has no id");
    }
    Ok(Seeded {
        network_id: net.id,
        users,
        directs,
        rooms,
    })
}
