//! Online backup while writes continue, and restore onto a stopped server.

mod common;

use common::{Api, Server, outpost};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[test]
fn a_backup_taken_during_writes_restores_to_a_consistent_appliance() {
    let mut s = Server::start();
    let api = s.owner();
    let net = api.first_network();
    api.post_csv(
        &format!("/networks/{net}/users/batch-create"),
        common::invite_csv("pre", 500),
    )
    .ok();

    // Keep writing while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (url, ca, token, net) = (s.url.clone(), s.ca.clone(), api.token.clone(), net.clone());
        let (stop, written) = (stop.clone(), written.clone());
        std::thread::spawn(move || {
            let api = Api::new(&url, &ca, token);
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                api.post(
                    &format!("/networks/{net}/users"),
                    &json!({"email": format!("during{i}@example.test")}),
                )
                .ok();
                written.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    while written.load(Ordering::Relaxed) < 20 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("backup.tar");
    let cli = dir.path().join("cli.toml");
    let env = [
        ("OUTPOST_URL", s.url.as_str()),
        ("OUTPOST_CA_CERT", s.ca.to_str().unwrap()),
        ("OUTPOST_CLI_CONFIG", cli.to_str().unwrap()),
    ];
    let token = api.token.clone().unwrap();
    let mut env_t = env.to_vec();
    env_t.push(("OUTPOST_TOKEN", token.as_str()));
    let (code, out, err) = outpost(&["backup", archive.to_str().unwrap()], &env_t);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("records"), "{err}");
    let during_at_backup = written.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();

    // Restore needs the server stopped: refused while it runs.
    let (code, _, err) = outpost(
        &[
            "restore",
            archive.to_str().unwrap(),
            "--data-dir",
            s.dir.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("already in use"), "{err}");
    s.stop();

    // Restore into a fresh folder and start an appliance from it.
    let target = dir.path().join("restored");
    let (code, out, err) = outpost(
        &[
            "restore",
            archive.to_str().unwrap(),
            "--data-dir",
            target.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = outpost(
        &["store", "check", "--data-dir", target.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode(&archive),
        0o600,
        "the downloaded archive holds secrets"
    );
    for f in ["outpost.redb", "tls/ca-key.pem", "tls/key.pem"] {
        assert_eq!(mode(&target.join(f)), 0o600, "restored {f}");
    }
    assert_eq!(mode(&target.join("tls")), 0o700);
    let mut restored = Server::builder().dir(&target).start();
    assert_eq!(
        std::fs::read(target.join("tls/ca.pem")).unwrap(),
        std::fs::read(s.dir.join("tls/ca.pem")).unwrap(),
        "the TLS identity comes back with the store"
    );
    let api = restored.owner();
    assert_eq!(api.first_network(), net);
    let users = api.all_users(&net);
    let pre = users
        .iter()
        .filter(|u| u["username"].as_str().unwrap().starts_with("pre"))
        .count();
    assert_eq!(pre, 500);
    let during = users.len() - pre;
    assert!(
        during >= 20 && during <= during_at_backup + 1,
        "{during} of {during_at_backup}"
    );
    assert_eq!(api.get("/audit/verify").ok()["ok"], true);
    restored.stop();

    // Restoring over an existing store keeps the old one beside it.
    let (code, out, _) = outpost(
        &[
            "restore",
            archive.to_str().unwrap(),
            "--data-dir",
            target.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0);
    assert!(out.contains("was kept as"), "{out}");
    let kept = std::fs::read_dir(&target)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("outpost.redb.before-restore-")
        });
    assert!(kept);

    // A damaged archive is refused without touching the store.
    let mut bytes = std::fs::read(&archive).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    let bad = dir.path().join("bad.tar");
    std::fs::write(&bad, bytes).unwrap();
    let before = std::fs::read(target.join("outpost.redb")).unwrap();
    let (code, _, err) = outpost(
        &[
            "restore",
            bad.to_str().unwrap(),
            "--data-dir",
            target.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("damaged") || err.contains("checksum"), "{err}");
    assert_eq!(before, std::fs::read(target.join("outpost.redb")).unwrap());
}

#[test]
fn the_cli_signs_in_and_administers_through_the_api() {
    let s = Server::builder().random_password().start();
    let line = s
        .lines
        .wait_for("password:", std::time::Duration::from_secs(5))
        .unwrap();
    let otp = line.split_whitespace().last().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let cli = dir.path().join("cli.toml");
    let env = [
        ("OUTPOST_URL", s.url.as_str()),
        ("OUTPOST_CA_CERT", s.ca.to_str().unwrap()),
        ("OUTPOST_CLI_CONFIG", cli.to_str().unwrap()),
    ];
    let run = |args: &[&str], stdin: &str| -> (i32, String, String) {
        use std::io::Write;
        let mut cmd = std::process::Command::new(common::BIN);
        cmd.args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    };
    let (code, out, err) = run(&["admin", "login", "--password-stdin"], &format!("{otp}\n"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("change it now"), "{out}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&cli).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "the saved token is private");
    let (code, _, err) = run(&["admin", "networks", "list"], "");
    assert_eq!(code, 1);
    assert!(err.contains("password_change_required"), "{err}");
    let (code, _, err) = run(
        &["admin", "passwd"],
        &format!("{otp}\nthe new owner passphrase\n"),
    );
    assert_eq!(code, 0, "{err}");

    let (code, out, _) = run(&["admin", "--json", "networks", "list"], "");
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let net = v["items"][0]["id"].as_str().unwrap().to_string();
    let (code, out, _) = run(&["admin", "networks", "list"], "");
    assert_eq!(code, 0);
    assert!(out.starts_with("ID") && out.contains(&net), "{out}");

    let (code, _, err) = run(
        &[
            "admin",
            "groups",
            "create",
            &net,
            "Field",
            "--set",
            "calling.force_tcp=true",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(
        &[
            "admin",
            "groups",
            "update",
            &net,
            "Field",
            "--set",
            "calling.audio=false",
        ],
        "",
    );
    assert_eq!(code, 1);
    assert!(err.contains("settings.calling.video"), "{err}");

    let csv = dir.path().join("people.csv");
    std::fs::write(&csv, "email,first_name,security_group\nann@example.test,Ann,Field\nbob@example.test,Bob,\nbad,Bad,\n").unwrap();
    let (code, _, err) = run(
        &["admin", "users", "import", &net, csv.to_str().unwrap()],
        "",
    );
    assert_eq!(code, 1);
    assert!(err.contains("line 4, column email"), "{err}");
    std::fs::write(
        &csv,
        "email,first_name,security_group\nann@example.test,Ann,Field\nbob@example.test,Bob,\n",
    )
    .unwrap();
    let (code, out, err) = run(
        &["admin", "users", "import", &net, csv.to_str().unwrap()],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("invited 2 users"), "{out}");
    let (code, out, _) = run(&["admin", "users", "suspend", &net, "ann@example.test"], "");
    assert_eq!(code, 0);
    assert!(out.contains("suspended"), "{out}");
    let export = dir.path().join("dir.csv");
    let (code, _, _) = run(
        &["admin", "users", "export", &net, export.to_str().unwrap()],
        "",
    );
    assert_eq!(code, 0);
    let text = std::fs::read_to_string(&export).unwrap();
    assert!(
        text.contains("ann@example.test,Ann,,,,Field,suspended"),
        "{text}"
    );
    let (code, _, err) = run(
        &[
            "admin",
            "users",
            "bulk-delete",
            &net,
            export.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(code, 1);
    assert!(err.contains("irreversible"), "{err}");
    let (code, out, _) = run(
        &[
            "admin",
            "users",
            "bulk-delete",
            &net,
            export.to_str().unwrap(),
            "--acknowledge-irreversible",
        ],
        "",
    );
    assert_eq!(code, 0);
    assert!(out.contains("deleted 2 users"), "{out}");
    // Mail is off: inviting one person prints the registration link to pass on.
    let (code, out, err) = run(&["admin", "users", "invite", &net, "cid@example.test"], "");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("/invite/oi_"), "{out}");

    let (code, out, _) = run(&["admin", "bots", "create", &net, "alertsbot"], "");
    assert_eq!(code, 0);
    assert!(out.contains("API token (shown only now): ob_"), "{out}");
    let (code, out, _) = run(
        &[
            "admin",
            "admins",
            "create",
            "ops",
            "--role",
            "admin",
            "--network",
            &net,
        ],
        "",
    );
    assert_eq!(code, 0);
    assert!(out.contains("one-time password"), "{out}");
    let (code, out, _) = run(
        &["admin", "audit", "list", "--event", "BatchDeleteUser"],
        "",
    );
    assert_eq!(code, 0);
    assert!(
        out.contains("BatchDeleteUser") && out.contains("success"),
        "{out}"
    );
    let (code, out, _) = run(&["audit", "verify"], "");
    assert_eq!(code, 0);
    assert!(out.contains("chain intact"), "{out}");
    let (code, _, _) = run(&["admin", "logout"], "");
    assert_eq!(code, 0);
    let (code, _, err) = run(&["admin", "networks", "list"], "");
    assert_eq!(code, 1);
    assert!(err.contains("not signed in"), "{err}");
}

#[test]
fn attachments_and_waiting_messages_come_back_with_a_restore() {
    use common::people;
    let mut s = Server::start();
    let owner = s.owner();
    let net = owner.first_network();
    let alice = people::person(&s, &owner, &net, "alice@example.test");
    let bob = people::person(&s, &owner, &net, "bob@example.test");
    let data: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let id = alice.upload(&data)["id"].as_str().unwrap().to_string();
    let dm = alice.dm(&bob);
    let mut a = alice.connect();
    let mut e = people::envelope(&dm, "with-file", &[&bob.device_id]);
    e["kind"] = json!("file");
    e["attachments"] = json!([{"blob_id": id}]);
    a.send(&json!({"type": "send", "envelope": e}));
    a.next_of("accepted");
    drop(a);

    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("backup.tar");
    let token = owner.token.clone().unwrap();
    let env = [
        ("OUTPOST_URL", s.url.as_str()),
        ("OUTPOST_CA_CERT", s.ca.to_str().unwrap()),
        ("OUTPOST_TOKEN", token.as_str()),
    ];
    let (code, out, err) = outpost(&["backup", archive.to_str().unwrap()], &env);
    assert_eq!(code, 0, "{out}{err}");
    s.stop();
    let target = dir.path().join("restored");
    let (code, out, err) = outpost(
        &[
            "restore",
            archive.to_str().unwrap(),
            "--data-dir",
            target.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    let restored = Server::builder().dir(&target).start();
    let bob = bob.on(&restored);
    let mut b = bob.connect();
    b.expect("membership");
    let d = b.expect("deliver");
    assert_eq!(d["envelope"]["client_msg_id"], "with-file");
    let (_, got) = bob.download(&id, None);
    assert_eq!(
        got.as_slice(),
        data.as_slice(),
        "the attachment is restored"
    );
}
