//! Nothing the relay acknowledged is lost and nothing is stored twice: a sender
//! pushes 100,000 envelopes, the server is SIGKILLed in the middle of the stream and
//! restarted, the sender retries everything it has no acknowledgement for (same
//! client message ids), and the recipients then receive every message — the
//! offline device exactly once, the online one at least once (it de-duplicates by
//! id, as clients must).

mod common;

use common::Server;
use common::people::{self, Person, send_frame};
use common::stream::Stream;
use serde_json::json;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

const MESSAGES: usize = 100_000;
const KILL_AFTER: usize = 40_000;
const WINDOW: usize = 200;

fn id(i: usize) -> String {
    format!("m{i}")
}

/// Send `todo` with a window of unacknowledged envelopes; stop early (returning
/// what is still unacknowledged) once `stop_after` acceptances were seen or the
/// stream ends.
fn send_all(
    s: &mut Stream,
    conv: &str,
    to: &[String],
    todo: &mut Vec<usize>,
    accepted: &mut HashMap<String, u64>,
    stop_after: Option<usize>,
) -> bool {
    let mut in_flight: BTreeSet<usize> = BTreeSet::new();
    let mut queue: std::collections::VecDeque<usize> = todo.drain(..).collect();
    loop {
        while in_flight.len() < WINDOW {
            let Some(i) = queue.pop_front() else { break };
            s.send(&send_frame(conv, &id(i), to));
            in_flight.insert(i);
        }
        if in_flight.is_empty() {
            return true;
        }
        let Some(f) = s.recv_within(Duration::from_secs(30)) else {
            // The stream ended (the server was killed): everything unanswered is retried.
            todo.extend(in_flight);
            todo.extend(queue);
            return false;
        };
        match f["type"].as_str() {
            Some("accepted") => {
                let cid = f["client_msg_id"].as_str().unwrap().to_string();
                let i: usize = cid[1..].parse().unwrap();
                in_flight.remove(&i);
                let seq = f["seq"].as_u64().unwrap();
                if let Some(first) = accepted.insert(cid.clone(), seq) {
                    assert_eq!(first, seq, "a retry of {cid} answered with another seq");
                }
                if stop_after.is_some_and(|n| accepted.len() >= n) {
                    todo.extend(in_flight);
                    todo.extend(queue);
                    return false;
                }
            }
            Some("error") if f["code"] == "rate_limited" => {
                // Refused, not stored: send it again a little later.
                let i: usize = f["client_msg_id"].as_str().unwrap()[1..].parse().unwrap();
                in_flight.remove(&i);
                queue.push_back(i);
                std::thread::sleep(Duration::from_millis(5));
            }
            Some("membership") | Some("policy") => {}
            _ => panic!("unexpected frame while sending: {f}"),
        }
    }
}

/// Receive until `want` distinct ids arrived, acking as a client would; returns how
/// many times each id came.
fn receive(p: &Person, want: usize, counts: &mut HashMap<String, u32>) {
    let mut s = Stream::websocket(&p.url, &p.ca);
    s.authenticate(&p.token);
    let mut since_ack = 0;
    while counts.len() < want {
        let f = s
            .recv_within(Duration::from_secs(60))
            .unwrap_or_else(|| panic!("only {} of {want} messages arrived", counts.len()));
        if f["type"] == "deliver" {
            let e = &f["envelope"];
            *counts
                .entry(e["client_msg_id"].as_str().unwrap().to_string())
                .or_default() += 1;
            since_ack += 1;
            if since_ack >= 500 {
                s.send(&json!({"type": "ack", "up_to": e["seq"]}));
                since_ack = 0;
            }
        }
    }
    assert!(
        s.recv_within(Duration::from_millis(500))
            .is_none_or(|f| f["type"] != "deliver")
    );
}

#[test]
fn every_acknowledged_envelope_survives_sigkill_and_arrives_exactly_once() {
    let mut server = Server::start();
    let owner = server.owner();
    let net = owner.first_network();
    let alice = people::person(&server, &owner, &net, "alice@example.test");
    let bob = people::person(&server, &owner, &net, "bob@example.test");
    let bob_phone = people::device(&server, &bob.email);
    let dm = alice.dm(&bob);
    let to = alice.recipients(&dm);
    assert_eq!(to.len(), 2);

    // The phone is online during the crash, receiving and acking.
    let phone = bob_phone.clone_for_thread();
    let online = std::thread::spawn(move || {
        let mut counts = HashMap::new();
        let mut s = Stream::websocket(&phone.url, &phone.ca);
        s.authenticate(&phone.token);
        let mut n = 0;
        while let Some(f) = s.recv_within(Duration::from_secs(30)) {
            if f["type"] == "deliver" {
                let e = &f["envelope"];
                *counts
                    .entry(e["client_msg_id"].as_str().unwrap().to_string())
                    .or_insert(0u32) += 1;
                n += 1;
                if n % 300 == 0 {
                    s.send(&json!({"type": "ack", "up_to": e["seq"]}));
                }
            }
        }
        counts
    });

    let mut accepted: HashMap<String, u64> = HashMap::new();
    let mut todo: Vec<usize> = (0..MESSAGES).collect();
    let mut a = Stream::websocket(&alice.url, &alice.ca);
    a.authenticate(&alice.token);
    let finished = send_all(&mut a, &dm, &to, &mut todo, &mut accepted, Some(KILL_AFTER));
    assert!(!finished);
    // Keep more in flight at the moment of the crash.
    for i in todo.iter().take(WINDOW) {
        a.send(&send_frame(&dm, &id(*i), &to));
    }
    server.kill();
    let before_crash = accepted.len();
    assert!(before_crash >= KILL_AFTER);
    let phone_counts_before = online.join().unwrap();

    let server = server.restart();
    let alice = alice.on(&server);
    let bob = bob.on(&server);
    let bob_phone = bob_phone.on(&server);
    let mut a = Stream::websocket(&alice.url, &alice.ca);
    a.authenticate(&alice.token);
    todo.sort_unstable();
    assert!(send_all(&mut a, &dm, &to, &mut todo, &mut accepted, None));
    assert_eq!(
        accepted.len(),
        MESSAGES,
        "every message is acknowledged in the end"
    );
    let seqs: HashSet<u64> = accepted.values().copied().collect();
    assert_eq!(
        seqs.len(),
        MESSAGES,
        "one seq per message: nothing stored twice"
    );

    // Bob's laptop was offline throughout: every message exactly once.
    let mut laptop = HashMap::new();
    receive(&bob, MESSAGES, &mut laptop);
    assert_eq!(laptop.len(), MESSAGES);
    let twice: Vec<_> = laptop.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");

    // The phone gets the rest after the restart; with what it saw before, nothing is missing.
    let mut phone = phone_counts_before;
    receive(&bob_phone, MESSAGES, &mut phone);
    assert_eq!(phone.len(), MESSAGES);
    for cid in accepted.keys() {
        assert!(phone.contains_key(cid), "{cid} never reached the phone");
    }
}
