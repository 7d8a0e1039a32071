//! Nothing acknowledged is lost: the server is SIGKILLed in the middle of concurrent
//! writes, restarted, and every write it acknowledged must be there — with its audit
//! event — and the store must pass its integrity and consistency checks.

mod common;

use common::{Api, Server, outpost};
use serde_json::json;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WRITERS: usize = 6;
const CYCLES: usize = 3;

#[test]
fn acknowledged_writes_survive_sigkill() {
    let mut server = Server::start();
    let mut acked_users: HashSet<String> = HashSet::new();
    let mut acked_groups: HashSet<String> = HashSet::new();
    let net = server.owner().first_network();

    for cycle in 0..CYCLES {
        let api = server.owner();
        let token = api.token.clone().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let users = Arc::new(Mutex::new(Vec::<String>::new()));
        let groups = Arc::new(Mutex::new(Vec::<String>::new()));
        let mut threads = Vec::new();
        for w in 0..WRITERS {
            let (url, ca, token) = (server.url.clone(), server.ca.clone(), token.clone());
            let (stop, users, groups, net) =
                (stop.clone(), users.clone(), groups.clone(), net.clone());
            threads.push(std::thread::spawn(move || {
                let api = Api::new(&url, &ca, Some(token));
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    if w == 0 && i.is_multiple_of(10) {
                        // A bulk invite of 50: all acknowledged together, or none.
                        let prefix = format!("c{cycle}b{i}-");
                        let body = common::invite_csv(&prefix, 50);
                        let Some(r) =
                            api.try_post_csv(&format!("/networks/{net}/users/batch-create"), body)
                        else {
                            break;
                        };
                        if r.status == 201 {
                            let mut u = users.lock().unwrap();
                            for k in 0..50 {
                                u.push(format!("{prefix}{k}@example.test"));
                            }
                        }
                    } else if w == 1 && i.is_multiple_of(3) {
                        let name = format!("c{cycle}g{i}");
                        let Some(r) = api.try_post(
                            &format!("/networks/{net}/security-groups"),
                            &json!({"name": name}),
                        ) else {
                            break;
                        };
                        if r.status == 201 {
                            groups.lock().unwrap().push(name);
                        }
                    } else {
                        let email = format!("c{cycle}w{w}n{i}@example.test");
                        let Some(r) = api
                            .try_post(&format!("/networks/{net}/users"), &json!({"email": email}))
                        else {
                            break;
                        };
                        if r.status == 201 {
                            users.lock().unwrap().push(email);
                        } else {
                            assert!(r.status >= 500, "unexpected refusal: {}", r.text);
                        }
                    }
                }
            }));
        }
        // Let writes pile up, then pull the plug.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while users.lock().unwrap().len() < 400 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        server.kill();
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            let _ = t.join();
        }
        let users = users.lock().unwrap().clone();
        assert!(
            users.len() >= 100,
            "cycle {cycle}: too few writes before the kill ({})",
            users.len()
        );
        acked_users.extend(users);
        acked_groups.extend(groups.lock().unwrap().iter().cloned());

        // Restart on the same folder: every acknowledged write is there.
        server = server.restart();
        let api = server.owner();
        let present: HashSet<String> = api
            .all_users(&net)
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_string())
            .collect();
        let missing: Vec<&String> = acked_users.difference(&present).collect();
        assert!(
            missing.is_empty(),
            "cycle {cycle}: {} acknowledged users lost, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        let group_names: HashSet<String> =
            api.get(&format!("/networks/{net}/security-groups")).ok()["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g["name"].as_str().unwrap().to_string())
                .collect();
        assert!(
            acked_groups.is_subset(&group_names),
            "cycle {cycle}: acknowledged groups lost"
        );

        // Each acknowledged change committed with its audit event.
        let mut created = 0u64;
        let mut cursor: Option<String> = None;
        loop {
            let q = match &cursor {
                Some(c) => {
                    format!("/audit?event_name=CreateUser&result=success&limit=1000&cursor={c}")
                }
                None => "/audit?event_name=CreateUser&result=success&limit=1000".to_string(),
            };
            let page = api.get(&q).ok();
            created += page["items"].as_array().unwrap().len() as u64;
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        let singles = acked_users.iter().filter(|u| u.contains('w')).count() as u64;
        assert!(
            created >= singles,
            "{created} CreateUser events for {singles} acknowledged users"
        );
        assert_eq!(api.get("/audit/verify").ok()["ok"], true);
    }

    // Finally, the offline checks: redb integrity, indexes and counters, audit chain.
    server.stop();
    let (code, out, err) = outpost(
        &["store", "check", "--data-dir", server.dir.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("directory: ok"), "{out}");
}
