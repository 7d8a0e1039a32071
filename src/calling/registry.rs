//! Every live allocation, the relay sockets, and how a packet finds its allocation.
//!
//! The relay range is small (default 16384–16584), so relay ports are shared: each new
//! allocation takes the least-used port of its address family, and a packet arriving on
//! a relay port is matched to an allocation by the peer's address (DESIGN.md "Ports").
//! Each port keeps, per peer IP, the allocations holding a permission for it. When more
//! than one allocation on a port has a permission for the same peer IP (only possible
//! once there are more allocations than ports), the one with a channel to the exact peer
//! address wins, then the most recent permission. Two callers on this appliance who
//! relay to each other never depend on that choice: the sender's relay hands the packet
//! straight to the receiving allocation ([`Registry::own_relay`]).
//!
//! Lookups take read locks; only allocation, permission changes and expiry write.

use super::allocation::{Allocation, FiveTuple};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;
use tokio::net::UdpSocket;

/// One relay socket.
#[derive(Debug)]
pub struct RelayPort {
    pub socket: Arc<UdpSocket>,
    /// The address given to clients (the external address when behind 1:1 NAT).
    pub advertised: SocketAddr,
    /// Allocations using this port.
    pub load: AtomicU32,
    /// Peer IP → allocations on this port with a permission for it (latest last).
    demux: RwLock<HashMap<IpAddr, Vec<Arc<Allocation>>>>,
}

impl RelayPort {
    pub fn new(socket: Arc<UdpSocket>, advertised: SocketAddr) -> RelayPort {
        RelayPort {
            socket,
            advertised,
            load: AtomicU32::new(0),
            demux: RwLock::new(HashMap::new()),
        }
    }

    /// The allocation a packet from `peer` belongs to, leaving out `except` (the sender,
    /// for packets relayed between two allocations of this appliance).
    pub fn route(
        &self,
        peer: SocketAddr,
        except: Option<u64>,
        now: Instant,
    ) -> Option<Arc<Allocation>> {
        let map = self.demux.read().unwrap_or_else(|p| p.into_inner());
        let list = map.get(&peer.ip())?;
        let mut candidates = list.iter().filter(|a| Some(a.id) != except);
        let first = candidates.next()?;
        let Some(second) = candidates.next() else {
            return Some(first.clone());
        };
        // Shared port and shared peer IP: prefer a channel to this exact peer.
        let all = [first, second].into_iter().chain(candidates);
        let mut last = first;
        for a in all {
            if a.has_channel_to(peer, now) {
                return Some(a.clone());
            }
            last = a;
        }
        Some(last.clone())
    }

    fn add_permission(&self, ip: IpAddr, alloc: &Arc<Allocation>) {
        let mut map = self.demux.write().unwrap_or_else(|p| p.into_inner());
        let list = map.entry(ip).or_default();
        list.retain(|a| a.id != alloc.id);
        list.push(alloc.clone());
    }

    fn remove_permission(&self, ip: IpAddr, id: u64) {
        let mut map = self.demux.write().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = map.get_mut(&ip) {
            list.retain(|a| a.id != id);
            if list.is_empty() {
                map.remove(&ip);
            }
        }
    }
}

/// Why an allocation cannot be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The user holds `calling.user_quota` allocations (486).
    UserQuota,
    /// The appliance holds `calling.total_quota` allocations (508).
    TotalQuota,
    /// No relay socket of the requested family (440).
    Family,
}

/// The allocation table.
pub struct Registry {
    by_five: RwLock<HashMap<FiveTuple, Arc<Allocation>>>,
    per_user: RwLock<HashMap<Arc<str>, u32>>,
    pub ports_v4: Vec<Arc<RelayPort>>,
    pub ports_v6: Vec<Arc<RelayPort>>,
    /// Advertised relay address → port, for relaying between two local allocations.
    by_advertised: HashMap<SocketAddr, Arc<RelayPort>>,
    next_id: AtomicU64,
    user_quota: u32,
    total_quota: u32,
}

impl Registry {
    pub fn new(
        ports_v4: Vec<Arc<RelayPort>>,
        ports_v6: Vec<Arc<RelayPort>>,
        user_quota: u32,
        total_quota: u32,
    ) -> Registry {
        let by_advertised = ports_v4
            .iter()
            .chain(&ports_v6)
            .map(|p| (p.advertised, p.clone()))
            .collect();
        Registry {
            by_five: RwLock::new(HashMap::new()),
            per_user: RwLock::new(HashMap::new()),
            ports_v4,
            ports_v6,
            by_advertised,
            next_id: AtomicU64::new(1),
            user_quota,
            total_quota,
        }
    }

    /// The allocation of a client 5-tuple.
    pub fn get(&self, five: &FiveTuple) -> Option<Arc<Allocation>> {
        self.by_five
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(five)
            .cloned()
    }

    pub fn len(&self) -> usize {
        self.by_five.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every allocation (for expiry and policy sweeps).
    pub fn all(&self) -> Vec<Arc<Allocation>> {
        self.by_five
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The relay port at `index`.
    pub fn port(&self, ipv6: bool, index: usize) -> &Arc<RelayPort> {
        if ipv6 {
            &self.ports_v6[index]
        } else {
            &self.ports_v4[index]
        }
    }

    /// The port of an allocation.
    pub fn port_of(&self, a: &Allocation) -> &Arc<RelayPort> {
        self.port(a.relayed.is_ipv6(), a.port)
    }

    /// The local relay port a peer address names, when the peer is another allocation
    /// of this appliance.
    pub fn own_relay(&self, peer: &SocketAddr) -> Option<&Arc<RelayPort>> {
        self.by_advertised.get(peer)
    }

    /// Checks the quotas and reserves a relay port: (port index, advertised address).
    /// The caller then builds the allocation and calls [`Registry::insert`].
    pub fn reserve(
        &self,
        user: &Arc<str>,
        ipv6: bool,
        even: bool,
    ) -> Result<(usize, SocketAddr), Refusal> {
        let ports = if ipv6 { &self.ports_v6 } else { &self.ports_v4 };
        if ports.is_empty() {
            return Err(Refusal::Family);
        }
        if self.len() >= self.total_quota as usize {
            return Err(Refusal::TotalQuota);
        }
        {
            let mut per_user = self.per_user.write().unwrap_or_else(|p| p.into_inner());
            let n = per_user.entry(user.clone()).or_insert(0);
            if *n >= self.user_quota {
                return Err(Refusal::UserQuota);
            }
            *n += 1;
        }
        let (index, port) = ports
            .iter()
            .enumerate()
            .filter(|(_, p)| !even || p.advertised.port() % 2 == 0)
            .min_by_key(|(_, p)| p.load.load(Ordering::Relaxed))
            .or_else(|| ports.iter().enumerate().next())
            .expect("ports is not empty");
        port.load.fetch_add(1, Ordering::Relaxed);
        Ok((index, port.advertised))
    }

    /// Gives back what [`Registry::reserve`] took, when the allocation was not made.
    pub fn unreserve(&self, user: &Arc<str>, ipv6: bool, index: usize) {
        self.port(ipv6, index).load.fetch_sub(1, Ordering::Relaxed);
        self.release_user(user);
    }

    fn release_user(&self, user: &Arc<str>) {
        let mut per_user = self.per_user.write().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = per_user.get_mut(user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_user.remove(user);
            }
        }
    }

    /// Adds a reserved allocation. Returns the one already there if the 5-tuple is taken
    /// (the caller answers 437 and unreserves).
    pub fn insert(&self, alloc: Arc<Allocation>) -> Result<(), Arc<Allocation>> {
        let mut map = self.by_five.write().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = map.get(&alloc.five) {
            return Err(existing.clone());
        }
        map.insert(alloc.five, alloc);
        Ok(())
    }

    /// Installs or refreshes a permission and lets the relay port route that peer here.
    pub fn permit(&self, alloc: &Arc<Allocation>, ip: IpAddr, now: Instant) {
        alloc.state().permit(ip, now);
        self.port_of(alloc).add_permission(ip, alloc);
    }

    /// Removes an allocation (expiry, Refresh 0, policy, closed connection). Returns
    /// false if it was already gone.
    pub fn remove(&self, alloc: &Arc<Allocation>) -> bool {
        {
            let mut map = self.by_five.write().unwrap_or_else(|p| p.into_inner());
            match map.get(&alloc.five) {
                Some(a) if a.id == alloc.id => {
                    map.remove(&alloc.five);
                }
                _ => return false,
            }
        }
        let permissions: Vec<IpAddr> = {
            let mut s = alloc.state();
            s.removed = true;
            s.channels.clear();
            std::mem::take(&mut s.permissions)
                .into_iter()
                .map(|(ip, _)| ip)
                .collect()
        };
        let port = self.port_of(alloc);
        for ip in permissions {
            port.remove_permission(ip, alloc.id);
        }
        port.load.fetch_sub(1, Ordering::Relaxed);
        self.release_user(&alloc.user_id);
        true
    }

    /// Ends expired permissions of an allocation.
    pub fn prune(&self, alloc: &Arc<Allocation>, now: Instant) {
        let gone = alloc.state().prune(now);
        let port = self.port_of(alloc);
        for ip in gone {
            port.remove_permission(ip, alloc.id);
        }
    }

    /// How many allocations `user` holds.
    pub fn user_count(&self, user: &str) -> u32 {
        self.per_user
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(user)
            .copied()
            .unwrap_or(0)
    }
}
