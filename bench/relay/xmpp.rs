//! A minimal XMPP client (RFC 6120/6121, XEP-0198, XEP-0045), hand-written because no
//! well-kept async Rust crate fits: the stream header, in-band registration
//! (XEP-0077), SASL PLAIN, resource binding, stream management, presence, MUC joins
//! and `<message/>`. It reads the stream by splitting it into top-level elements
//! with a small scanner (quotes respected, no DTDs, comments or CDATA — a server
//! never sends those) and picks attributes and the `<body/>` out of the raw text,
//! which is all the benchmark needs.

use crate::common::stream::{Tls, tls_connect};
use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio_rustls::TlsConnector;

pub const SM: &str = "urn:xmpp:sm:3";

/// Where a complete top-level element ends in `buf` (which starts inside the
/// stream), as (start, end); `Ok(None)` if more bytes are needed; an error when the
/// stream itself is closed (`</stream:stream>`).
pub fn split_element(buf: &[u8]) -> Result<Option<(usize, usize)>> {
    let mut i = 0;
    let mut depth = 0usize;
    let mut start = None;
    while i < buf.len() {
        if buf[i] != b'<' {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        let mut quote: Option<u8> = None;
        while j < buf.len() {
            let c = buf[j];
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == b'"' || c == b'\'' => quote = Some(c),
                None if c == b'>' => break,
                None => {}
            }
            j += 1;
        }
        if j >= buf.len() {
            return Ok(None);
        }
        let tag = &buf[i..=j];
        if start.is_none() {
            start = Some(i);
        }
        match tag.get(1) {
            Some(b'/') => {
                if depth == 0 {
                    bail!(
                        "the server closed the XMPP stream: {}",
                        String::from_utf8_lossy(tag)
                    );
                }
                depth -= 1;
                if depth == 0 {
                    return Ok(Some((start.expect("set"), j + 1)));
                }
            }
            Some(b'?') | Some(b'!') => {
                if depth == 0 {
                    start = None;
                }
            }
            _ if tag.ends_with(b"/>") => {
                if depth == 0 {
                    return Ok(Some((start.expect("set"), j + 1)));
                }
            }
            _ => depth += 1,
        }
        i = j + 1;
    }
    Ok(None)
}

/// One top-level element as text.
pub struct Element(pub String);

impl Element {
    /// The element name, with any prefix (`message`, `stream:features`, `a`).
    pub fn name(&self) -> &str {
        let s = &self.0[1..];
        let end = s
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .unwrap_or(s.len());
        &s[..end]
    }

    fn open_tag(&self) -> &str {
        let mut quote = None;
        for (i, c) in self.0.char_indices() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == '"' || c == '\'' => quote = Some(c),
                None if c == '>' => return &self.0[..=i],
                None => {}
            }
        }
        &self.0
    }

    /// An attribute of the element's own opening tag.
    pub fn attr(&self, name: &str) -> Option<&str> {
        let tag = self.open_tag();
        let mut from = 0;
        while let Some(p) = tag[from..].find(name) {
            let at = from + p;
            from = at + name.len();
            let before_ok = tag[..at].ends_with(|c: char| c.is_whitespace());
            let rest = &tag[at + name.len()..];
            if before_ok && rest.starts_with('=') {
                let q = rest[1..].chars().next()?;
                let v = &rest[2..];
                return v.find(q).map(|e| &v[..e]);
            }
        }
        None
    }

    /// Text of the first `<tag>…</tag>` inside.
    pub fn child_text(&self, tag: &str) -> Option<&str> {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        let s = self.0.find(&open)? + open.len();
        let e = self.0[s..].find(&close)? + s;
        Some(&self.0[s..e])
    }

    pub fn contains(&self, s: &str) -> bool {
        self.0.contains(s)
    }

    /// Whether this is a stanza (counts for stream management).
    pub fn is_stanza(&self) -> bool {
        matches!(self.name(), "message" | "presence" | "iq")
    }
}

/// Escape text for an attribute or element.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

/// An XMPP client stream over TLS.
pub struct Conn {
    pub r: ReadHalf<Tls>,
    pub w: WriteHalf<Tls>,
    buf: Vec<u8>,
    /// Where the unconsumed bytes of `buf` start.
    start: usize,
    domain: String,
}

impl Conn {
    /// TLS to `addr` (certificate for `domain`) and the opening stream header.
    pub async fn connect(addr: SocketAddr, domain: &str, tls: &TlsConnector) -> Result<Conn> {
        let s = tls_connect(addr, None, domain, tls).await?;
        let (r, w) = tokio::io::split(s);
        let mut c = Conn {
            r,
            w,
            buf: Vec::with_capacity(16 * 1024),
            start: 0,
            domain: domain.to_string(),
        };
        c.open_stream().await?;
        Ok(c)
    }

    /// Send a stream header, read the server's and its `<stream:features>`.
    pub async fn open_stream(&mut self) -> Result<Element> {
        let header = format!(
            "<?xml version='1.0'?><stream:stream to='{}' xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>",
            self.domain
        );
        self.send(&header).await?;
        self.buf.drain(..self.start);
        self.start = 0;
        loop {
            if let Some(p) = find(&self.buf, b"<stream:stream") {
                let rest = &self.buf[p..];
                if let Some(e) = rest.iter().position(|&c| c == b'>') {
                    self.buf.drain(..p + e + 1);
                    break;
                }
            }
            self.fill().await?;
        }
        let f = self.next().await?;
        if f.name() != "stream:features" {
            bail!("expected stream features, got {}", f.0);
        }
        Ok(f)
    }

    pub async fn send(&mut self, s: &str) -> Result<()> {
        self.w
            .write_all(s.as_bytes())
            .await
            .context("writing to the XMPP stream")
    }

    async fn fill(&mut self) -> Result<()> {
        // Drop what was consumed before reading more (not after every element).
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let n = self
            .r
            .read_buf(&mut self.buf)
            .await
            .context("reading the XMPP stream")?;
        if n == 0 {
            bail!("the server closed the XMPP connection");
        }
        Ok(())
    }

    /// The next complete element already buffered, if any.
    pub fn buffered(&mut self) -> Result<Option<Element>> {
        match split_element(&self.buf[self.start..])? {
            Some((s, e)) => {
                let (s, e) = (self.start + s, self.start + e);
                let text = String::from_utf8_lossy(&self.buf[s..e]).into_owned();
                self.start = e;
                if self.start == self.buf.len() {
                    self.buf.clear();
                    self.start = 0;
                }
                Ok(Some(Element(text)))
            }
            None => Ok(None),
        }
    }

    /// Read more bytes into the buffer (cancel-safe: usable in `select!`).
    pub async fn read_more(&mut self) -> Result<()> {
        self.fill().await
    }

    /// The next element, reading as needed.
    pub async fn next(&mut self) -> Result<Element> {
        loop {
            if let Some(e) = self.buffered()? {
                return Ok(e);
            }
            self.fill().await?;
        }
    }

    /// The next element that is not a stream-management request, answering those
    /// (`received` is the count of stanzas handled so far).
    pub async fn next_answering(&mut self, received: &mut u32) -> Result<Element> {
        loop {
            let e = self.next().await?;
            if e.name() == "r" {
                let a = format!("<a xmlns='{SM}' h='{received}'/>");
                self.send(&a).await?;
                continue;
            }
            if e.is_stanza() {
                *received = received.wrapping_add(1);
            }
            return Ok(e);
        }
    }

    /// In-band registration (XEP-0077); an existing account is fine.
    pub async fn register(&mut self, user: &str, password: &str) -> Result<()> {
        self.send(&format!(
            "<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>{}</username>\
             <password>{}</password></query></iq>",
            escape(user),
            escape(password)
        ))
        .await?;
        let e = self.next().await?;
        if e.name() == "iq" && e.attr("type") == Some("result") {
            return Ok(());
        }
        if e.contains("<conflict") {
            return Ok(());
        }
        bail!("registering {user} was refused: {}", e.0)
    }

    /// SASL PLAIN, stream restart, bind, stream management on. Returns the full JID.
    pub async fn login(&mut self, user: &str, password: &str, resource: &str) -> Result<String> {
        let cred = STANDARD.encode(format!("\0{user}\0{password}"));
        self.send(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{cred}</auth>"
        ))
        .await?;
        let e = self.next().await?;
        if e.name() != "success" {
            bail!("SASL PLAIN for {user} failed: {}", e.0);
        }
        self.buf.clear();
        self.start = 0;
        let features = self.open_stream().await?;
        if !features.contains(SM) {
            bail!(
                "the server does not offer stream management: {}",
                features.0
            );
        }
        self.send(&format!(
            "<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
             <resource>{}</resource></bind></iq>",
            escape(resource)
        ))
        .await?;
        let e = self.next().await?;
        let jid = e
            .child_text("jid")
            .filter(|_| e.attr("type") == Some("result"))
            .ok_or_else(|| anyhow!("binding a resource for {user} failed: {}", e.0))?
            .to_string();
        self.send(&format!("<enable xmlns='{SM}'/>")).await?;
        let e = self.next().await?;
        if e.name() != "enabled" {
            bail!("enabling stream management for {user} failed: {}", e.0);
        }
        Ok(jid)
    }

    /// Close the stream politely (errors ignored).
    pub async fn close(&mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            let _ = self.send("</stream:stream>").await;
            let _ = self.w.shutdown().await;
        })
        .await;
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
