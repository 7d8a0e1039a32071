//! The admin console in a real browser: headless Chromium driven by playwright-core
//! (`tests/js/console.mjs`) signs in, is refused with a wrong password, lists and
//! creates networks, tags one and deletes it (refused without the typed word or with a
//! wrong password) and signs out, under the appliance's classification banner; no page
//! may request anything from another host, log a console error, scroll sideways at
//! 1280 px or leave a control unlabeled. Screenshots of every page are kept under
//! `target/console-screenshots/` (not committed). The audit log then holds the
//! console's actions, under the same operation names as the API's.

mod common;

use common::{Server, browser};
use serde_json::json;

#[test]
fn an_administrator_signs_in_creates_a_network_and_signs_out_in_a_browser() {
    let server = Server::start();
    let owner = server.owner();
    let network = owner.first_network();
    owner.set_network_settings(
        &network,
        json!({"classification": {"level": "secret", "caveats": "noforn"}}),
    );
    // A directory of 60 people (more than one page), one of them suspended.
    owner
        .post_csv(
            &format!("/networks/{network}/users/batch-create"),
            common::invite_csv("member", 60),
        )
        .ok();
    let users = owner
        .get(&format!("/networks/{network}/users?search=member7%40"))
        .ok();
    let seventh = users["items"][0]["id"].as_str().unwrap().to_string();
    owner
        .post_empty(&format!("/networks/{network}/users/{seventh}/suspend"))
        .ok();
    let shots = browser::shots("basics");
    let (ok, log) = browser::walk(
        "console.mjs",
        &[
            &server.url,
            "owner",
            &server.password,
            &shots,
            "SECRET//NOFORN",
        ],
    );
    assert!(ok, "{log}");

    // The console's actions are in the audit log under the API's operation names.
    browser::assert_audited(
        &owner,
        &[
            ("CreateAdminSession", 401),
            ("CreateAdminSession", 201),
            ("ListNetworks", 200),
            ("CreateNetwork", 201),
            ("GetNetwork", 200),
            ("ListUsers", 200),
            ("TagResource", 200),
            ("UntagResource", 200),
            ("DeleteNetwork", 403),
            ("DeleteNetwork", 422),
            ("DeleteNetwork", 200),
            ("DeleteAdminSession", 303),
        ],
    );
}
