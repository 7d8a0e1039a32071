//! Two people message each other through a running appliance with the reference
//! client's command line — `outpost client login|rooms|send|listen|upload|download` —
//! over WebSocket and QUIC, text and files, with real end-to-end encryption.

mod common;

use common::{Server, outpost};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const PASSWORD: &str = "Correct-horse-battery-9";

struct Cli {
    profile: PathBuf,
}

impl Cli {
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let mut all = vec!["client", "--profile", self.profile.to_str().unwrap()];
        all.extend_from_slice(args);
        outpost(&all, &[("OUTPOST_CLIENT_PASSWORD", PASSWORD)])
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "outpost client {args:?} failed:\n{out}\n{err}");
        out
    }
}

fn login(server: &Server, dir: &Path, email: &str) -> Cli {
    let cli = Cli {
        profile: dir.join(format!("{email}.json")),
    };
    cli.ok(&[
        "login",
        "--url",
        &server.url,
        "--ca-cert",
        server.ca.to_str().unwrap(),
        "--username",
        email,
        "--device-name",
        "test-laptop",
    ]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&cli.profile)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "the profile holds private keys");
    cli
}

/// The decrypted messages among the JSON lines `listen --json` printed.
fn messages(out: &str) -> Vec<Value> {
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "message")
        .collect()
}

#[test]
fn two_people_exchange_messages_and_files_end_to_end() {
    let server = Server::start();
    let owner = server.owner();
    let net = owner.first_network();
    for who in ["alice", "bob", "carol"] {
        owner
            .post(
                &format!("/admin/api/v1/networks/{net}/users"),
                &json!({"email": format!("{who}@example.test"), "first_name": who, "password": PASSWORD}),
            )
            .ok();
    }
    let dir = tempfile::tempdir().unwrap();
    let alice = login(&server, dir.path(), "alice@example.test");
    let bob = login(&server, dir.path(), "bob@example.test");
    let carol = login(&server, dir.path(), "carol@example.test");

    // Text, alice → bob over WebSocket; bob listens over QUIC.
    alice.ok(&["send", "--to", "bob@example.test", "hello", "bob"]);
    let out = bob.ok(&[
        "listen",
        "--json",
        "--count",
        "1",
        "--timeout",
        "30",
        "--transport",
        "quic",
    ]);
    let got = messages(&out);
    assert_eq!(got.len(), 1, "{out}");
    assert_eq!(
        got[0]["content"]["text"], "hello bob",
        "the text is decrypted: {out}"
    );

    // And back, bob → alice over QUIC.
    bob.ok(&[
        "send",
        "--to",
        "alice@example.test",
        "--transport",
        "quic",
        "hi",
        "alice",
    ]);
    let out = alice.ok(&["listen", "--json", "--count", "1", "--timeout", "30"]);
    assert!(out.contains("hi alice"), "{out}");

    // A file: encrypted, uploaded, sent, received, decrypted and checked.
    let file = dir.path().join("report.bin");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(&file, &data).unwrap();
    alice.ok(&[
        "send",
        "--to",
        "bob@example.test",
        "--file",
        file.to_str().unwrap(),
        "the report",
    ]);
    let saved = dir.path().join("bob-files");
    std::fs::create_dir_all(&saved).unwrap();
    let out = bob.ok(&[
        "listen",
        "--json",
        "--count",
        "1",
        "--timeout",
        "30",
        "--save-files",
        saved.to_str().unwrap(),
    ]);
    assert!(out.contains("the report"), "{out}");
    let files: Vec<_> = std::fs::read_dir(&saved)
        .unwrap()
        .filter_map(|e| e.ok())
        .collect();
    assert_eq!(files.len(), 1, "one file saved: {out}");
    assert_eq!(
        std::fs::read(files[0].path()).unwrap(),
        data,
        "the file arrives intact"
    );
    // The server only ever held ciphertext: the stored blob is not the plaintext.
    let stored: Vec<PathBuf> = walk(&server.dir.join("blobs/sha256"));
    assert!(!stored.is_empty());
    for p in &stored {
        let bytes = std::fs::read(p).unwrap();
        assert_ne!(
            bytes.get(..1000),
            data.get(..1000),
            "a blob holds plaintext"
        );
    }

    // A room: alice creates it with bob and carol; both receive one message.
    alice.ok(&[
        "rooms",
        "create",
        "ops",
        "--member",
        "bob@example.test",
        "--member",
        "carol@example.test",
    ]);
    let rooms = alice.ok(&["rooms", "list", "--json"]);
    assert!(rooms.contains("ops"), "{rooms}");
    alice.ok(&["send", "--room", "ops", "to", "the", "room"]);
    for p in [&bob, &carol] {
        let out = p.ok(&["listen", "--json", "--count", "1", "--timeout", "30"]);
        assert!(out.contains("to the room"), "{out}");
    }
    // Nothing is left waiting once read (listen acknowledges what it printed).
    let (code, out, _) = bob.run(&["listen", "--json", "--count", "1", "--timeout", "2"]);
    assert_eq!(code, 1, "no more messages: {out}");
    assert!(messages(&out).is_empty(), "{out}");

    // A wrong password is refused with a clear message.
    let (code, _, err) = outpost(
        &[
            "client",
            "--profile",
            dir.path().join("x.json").to_str().unwrap(),
            "login",
            "--url",
            &server.url,
            "--ca-cert",
            server.ca.to_str().unwrap(),
            "--username",
            "alice@example.test",
        ],
        &[("OUTPOST_CLIENT_PASSWORD", "wrong-password-1")],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("invalid_credentials") || err.contains("wrong"),
        "{err}"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.filter_map(|e| e.ok()) {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
