//! Receiving datagrams in batches (`recvmmsg` through quinn-udp): one system call and
//! one wake-up of the task for up to [`BATCH`] datagrams, where one `recvfrom` each cost
//! a system call apiece. The relay's per-packet cost is mostly the kernel's, so the calls
//! saved are most of what user space can save.
//!
//! Each slot is a whole UDP payload (64 KiB) with [`HEADROOM`] bytes in front and 3 spare
//! bytes behind, so a received datagram is never truncated and its frame header and
//! padding are written in place. The slots are one allocation the kernel maps lazily:
//! a port's resident cost is the pages its datagrams touched.

use super::datapath::HEADROOM;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams one receive call may return.
pub const BATCH: usize = 16;
/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;
/// One slot: headroom, the payload, room for 3 bytes of padding.
const SLOT: usize = HEADROOM + MAX_DATAGRAM + 3;

/// A batch receiver for one socket.
pub struct Batch {
    state: quinn_udp::UdpSocketState,
    slots: Vec<u8>,
    meta: [quinn_udp::RecvMeta; BATCH],
}

impl Batch {
    /// Prepares `socket` for batch receives. GRO (coalescing several datagrams into one
    /// slot) stays off: each datagram must stay one packet.
    pub fn new(socket: &UdpSocket) -> io::Result<Batch> {
        let state = quinn_udp::UdpSocketState::new(socket.into())?;
        disable_gro(socket);
        Ok(Batch {
            state,
            slots: vec![0u8; SLOT * BATCH],
            meta: [quinn_udp::RecvMeta::default(); BATCH],
        })
    }

    /// Waits for datagrams and receives up to [`BATCH`]; returns how many.
    pub async fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        loop {
            socket.readable().await?;
            let Batch { state, slots, meta } = self;
            let result = socket.try_io(Interest::READABLE, || {
                let mut iovs: Vec<IoSliceMut<'_>> = slots
                    .chunks_exact_mut(SLOT)
                    .map(|s| IoSliceMut::new(&mut s[HEADROOM..HEADROOM + MAX_DATAGRAM]))
                    .collect();
                state.recv(socket.into(), &mut iovs, meta)
            });
            match result {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                // ICMP errors from earlier sends surface here; they concern one peer.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Datagram `i` of the last batch: its source, its slot (the payload at
    /// `slot[HEADROOM..HEADROOM + len]`) and its length.
    pub fn datagram(&mut self, i: usize) -> (SocketAddr, &mut [u8], usize) {
        let m = &self.meta[i];
        let slot = &mut self.slots[i * SLOT..(i + 1) * SLOT];
        (canonical(m.addr), slot, m.len.min(MAX_DATAGRAM))
    }
}

/// quinn-udp reports IPv4 sources of dual-stack sockets as IPv4-mapped IPv6 addresses.
fn canonical(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => a,
        },
        v4 => v4,
    }
}

fn disable_gro(socket: &UdpSocket) {
    use std::os::fd::AsRawFd;
    const UDP_GRO: libc::c_int = 104;
    let off: libc::c_int = 0;
    // SAFETY: a valid socket descriptor and a c_int option value.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_UDP,
            UDP_GRO,
            &off as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Datagrams waiting to be sent, flushed with one `sendmmsg` per socket run: a batch of
/// packets for the same receiver wakes it once instead of once per packet (on a small
/// machine the wake-ups, not the copies, are most of the cost of a sent datagram).
/// quinn-udp sends only runs of equal segments to one destination (GSO); relayed media
/// goes to many destinations in packets of every size, hence this small wrapper.
#[derive(Default)]
pub struct Outbox {
    data: Vec<u8>,
    items: Vec<Item>,
}

/// One queued datagram and what to count when it leaves.
struct Item {
    fd: std::os::fd::RawFd,
    to: SocketAddr,
    start: usize,
    len: usize,
    tag: u32,
}

/// What a flush did with each datagram: its tag, and whether the kernel took it.
pub type Sent = (u32, bool);

/// Datagrams one `sendmmsg` call takes.
const SEND_BATCH: usize = 64;

impl Outbox {
    /// Queues `frame` for `to` on `socket`; `tag` comes back from [`Outbox::flush`].
    pub fn push(&mut self, socket: &UdpSocket, to: SocketAddr, frame: &[u8], tag: u32) {
        use std::os::fd::AsRawFd;
        let start = self.data.len();
        self.data.extend_from_slice(frame);
        self.items.push(Item {
            fd: socket.as_raw_fd(),
            to,
            start,
            len: frame.len(),
            tag,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Sends everything queued, without waiting: a socket whose buffer is full drops the
    /// rest of its run (UDP semantics). `done` sees each datagram's tag and fate.
    pub fn flush(&mut self, mut done: impl FnMut(Sent)) {
        let mut i = 0;
        while i < self.items.len() {
            let fd = self.items[i].fd;
            let mut end = i + 1;
            while end < self.items.len() && end - i < SEND_BATCH && self.items[end].fd == fd {
                end += 1;
            }
            send_run(fd, &self.items[i..end], &self.data, &mut done);
            i = end;
        }
        self.items.clear();
        self.data.clear();
    }
}

/// `sendmmsg` of `items` (all on `fd`), telling `done` each one's fate.
fn send_run(fd: std::os::fd::RawFd, items: &[Item], data: &[u8], done: &mut impl FnMut(Sent)) {
    let n = items.len();
    let mut names: Vec<libc::sockaddr_storage> = Vec::with_capacity(n);
    let mut name_lens: Vec<libc::socklen_t> = Vec::with_capacity(n);
    let mut iovs: Vec<libc::iovec> = Vec::with_capacity(n);
    for it in items {
        let (storage, len) = sockaddr(&it.to);
        names.push(storage);
        name_lens.push(len);
        iovs.push(libc::iovec {
            iov_base: data[it.start..].as_ptr() as *mut libc::c_void,
            iov_len: it.len,
        });
    }
    // SAFETY: an all-zero mmsghdr is a valid empty header.
    let mut hdrs: Vec<libc::mmsghdr> = (0..n).map(|_| unsafe { std::mem::zeroed() }).collect();
    for k in 0..n {
        let h = &mut hdrs[k].msg_hdr;
        h.msg_name = &mut names[k] as *mut libc::sockaddr_storage as *mut libc::c_void;
        h.msg_namelen = name_lens[k];
        h.msg_iov = &mut iovs[k];
        h.msg_iovlen = 1;
    }
    let mut at = 0;
    while at < n {
        // SAFETY: every header points at a live name and iovec (in the vectors above,
        // which outlive the call) and each iovec at bytes inside `data`.
        let r = unsafe {
            libc::sendmmsg(
                fd,
                hdrs[at..].as_mut_ptr(),
                (n - at) as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if r > 0 {
            for it in &items[at..at + r as usize] {
                done((it.tag, true));
            }
            at += r as usize;
            continue;
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            // The buffer is full: the rest of the run is dropped.
            Some(libc::EAGAIN) | Some(libc::ENOBUFS) => break,
            // The message at the head was refused (an unreachable destination, an
            // ICMP error from an earlier send): it is lost, the others go on.
            _ => {
                done((items[at].tag, false));
                at += 1;
            }
        }
    }
    for it in &items[at..] {
        done((it.tag, false));
    }
}

/// A socket address as the kernel takes it.
fn sockaddr(a: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match a {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is large enough and aligned for any sockaddr.
            unsafe {
                std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in, sin);
            }
            (
                storage,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: as above.
            unsafe {
                std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in6, sin6);
            }
            (
                storage,
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_outbox_sends_runs_to_many_destinations_and_batches_arrive_whole() {
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("[::1]:0").await.ok();
        let tx6 = UdpSocket::bind("[::1]:0").await.ok();
        let mut out = Outbox::default();
        for i in 0..100u32 {
            out.push(&tx, a.local_addr().unwrap(), &i.to_be_bytes(), i);
        }
        if let (Some(b), Some(tx6)) = (&b, &tx6) {
            out.push(tx6, b.local_addr().unwrap(), b"six", 1000);
        }
        let mut fates = Vec::new();
        out.flush(|f| fates.push(f));
        assert!(out.is_empty());
        assert_eq!(fates.len(), 100 + usize::from(b.is_some()));
        assert!(fates.iter().all(|(_, ok)| *ok));
        let mut batch = Batch::new(&a).unwrap();
        let mut got = Vec::new();
        while got.len() < 100 {
            let n = batch.recv(&a).await.unwrap();
            for i in 0..n {
                let (from, slot, len) = batch.datagram(i);
                assert_eq!(from, tx.local_addr().unwrap());
                got.push(u32::from_be_bytes(
                    slot[HEADROOM..HEADROOM + len].try_into().unwrap(),
                ));
            }
        }
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        if let Some(b) = b {
            let mut buf = [0u8; 8];
            let (n, _) = b.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"six");
        }
    }
}
