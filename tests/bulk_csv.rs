//! Bulk invite, delete and suspend by CSV: the files people really upload, good and
//! bad, and the rule that a file applies completely or not at all.

mod common;

use common::{Api, Server};
use serde_json::{Value, json};

fn count(api: &Api, net: &str) -> Value {
    api.get(&format!("/networks/{net}/users/count")).ok()
}

fn report(v: &Value) -> Vec<(u64, String, String)> {
    v["details"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["column"].as_str().unwrap_or("").to_string(),
                e["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_template_filled_in_by_a_spreadsheet_imports() {
    let s = Server::start();
    let api = s.owner();
    let net = api.first_network();
    let tpl = api.get(&format!("/networks/{net}/users/templates/invite"));
    assert_eq!(tpl.status, 200);
    assert!(
        tpl.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert_eq!(
        tpl.text.trim(),
        "email,first_name,last_name,country_code,phone,security_group"
    );
    api.get(&format!("/networks/{net}/users/templates/rename"))
        .expect(404, "template_not_found");

    api.post(
        &format!("/networks/{net}/security-groups"),
        &json!({"name": "Field Team"}),
    )
    .ok();
    // BOM, CRLF, quoted commas and quotes, labels instead of keys, a blank line, trailing empty rows.
    let file = "\u{feff}E-mail Address,First Name,Last Name,Country Code,Phone Number,Security Group\r\n\
                ann@example.test,\"Smith, Jr.\",\"O\"\"Neil\",44,020 7946 0000,Field Team\r\n\
                \r\n\
                BOB@example.test,Bob,,,,\r\n\
                ,,,,,\r\n";
    let v = api
        .post_csv(&format!("/networks/{net}/users/batch-create"), file)
        .ok();
    assert_eq!(
        (v["rows"].as_u64(), v["applied"].as_u64()),
        (Some(2), Some(2))
    );
    let users = api.all_users(&net);
    let ann = users
        .iter()
        .find(|u| u["username"] == "ann@example.test")
        .unwrap();
    assert_eq!(ann["first_name"], "Smith, Jr.");
    assert_eq!(ann["last_name"], "O\"Neil");
    assert_eq!(ann["country_code"], "+44");
    assert!(users.iter().any(|u| u["username"] == "bob@example.test"));
}

#[test]
fn a_bad_file_reports_every_bad_row_and_changes_nothing() {
    let s = Server::start();
    let api = s.owner();
    let net = api.first_network();
    api.post(
        &format!("/networks/{net}/users"),
        &json!({"email": "taken@example.test"}),
    )
    .ok();
    let file = "email,first_name,phone,security_group\n\
                good@example.test,Good,,\n\
                not-an-email,Bad,,\n\
                taken@example.test,Dup,,\n\
                good@example.test,Again,,\n\
                x@example.test,X,phone,\n\
                y@example.test,Y,,No Such Group\n\
                z@example.test,Z\n";
    let e = api
        .post_csv(&format!("/networks/{net}/users/batch-create"), file)
        .expect(422, "csv_invalid");
    let r = report(&e);
    let lines: Vec<u64> = r.iter().map(|x| x.0).collect();
    assert_eq!(lines, vec![3, 4, 5, 6, 7, 8], "{r:?}");
    assert_eq!(r[0].1, "email");
    assert!(r[2].2.contains("also on line 2"), "{r:?}");
    assert_eq!(r[4].1, "security_group");
    assert!(r[5].2.contains("cells"), "{r:?}");
    assert_eq!(e["details"]["rows"], 7);
    assert_eq!(
        count(&api, &net)["total"],
        1,
        "nothing from the bad file was applied"
    );
}

#[test]
fn headers_must_name_known_columns_including_email() {
    let s = Server::start();
    let api = s.owner();
    let net = api.first_network();
    let path = format!("/networks/{net}/users/batch-create");
    let e = api
        .post_csv(&path, "email,nickname\na@example.test,al\n")
        .expect(422, "csv_invalid");
    assert_eq!(
        report(&e),
        vec![(1, "nickname".into(), report(&e)[0].2.clone())]
    );
    assert!(report(&e)[0].2.contains("unknown column"));
    let e = api
        .post_csv(&path, "first_name,last_name\nA,B\n")
        .expect(422, "csv_invalid");
    assert!(report(&e)[0].2.contains("no email column"));
    let e = api
        .post_csv(&path, "email,Email\na@example.test,b@example.test\n")
        .expect(422, "csv_invalid");
    assert!(report(&e)[0].2.contains("twice"));
    // A list of addresses without a header: the first address reads as an unknown column.
    let e = api
        .post_csv(&path, "a@example.test\nb@example.test\n")
        .expect(422, "csv_invalid");
    assert!(report(&e)[0].2.contains("first line must name the columns"));
    api.post_csv(&path, "").expect(422, "csv_empty");
    api.post_csv(&path, "email\r\n").expect(422, "csv_empty");
    api.post_csv(&path, "  \n\n").expect(422, "csv_empty");
}

#[test]
fn binary_garbage_and_bad_encodings_are_refused() {
    let s = Server::start();
    let api = s.owner();
    let net = api.first_network();
    let path = format!("/networks/{net}/users/batch-create");
    let mut garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    garbage[0] = 0x89;
    api.post_raw(&path, "application/octet-stream", garbage)
        .expect(422, "csv_invalid");
    // Latin-1 in a name cell: the row is named, with the column.
    let mut latin1 = b"email,first_name\ncafe@example.test,Caf".to_vec();
    latin1.push(0xe9);
    latin1.extend_from_slice(b"\n");
    let e = api
        .post_raw(&path, "text/csv", latin1)
        .expect(422, "csv_invalid");
    assert_eq!(
        report(&e)[0],
        (
            2,
            "first_name".into(),
            "is not UTF-8 text; save the file as CSV UTF-8".into()
        )
    );
    // An unterminated quote runs to the end of the file: still an answer, not a hang or 500.
    let r = api.post_csv(
        &path,
        "email,first_name\n\"a@example.test,Ann\nb@example.test,Bo\n",
    );
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(count(&api, &net)["total"], 0);
}

#[test]
fn one_hundred_thousand_rows_import_and_one_more_is_refused() {
    let s = Server::start();
    let api = s.owner();
    let net = api.first_network();
    let path = format!("/networks/{net}/users/batch-create");
    let mut too_many = common::invite_csv("over", 100_001);
    let e = api
        .post_csv(&path, too_many.clone())
        .expect(422, "csv_too_many_rows");
    assert!(e["message"].as_str().unwrap().contains("100000"));
    // Drop the last row: exactly the limit imports in one commit.
    let cut = too_many.trim_end().rfind('\n').unwrap();
    too_many.truncate(cut + 1);
    let v = api.post_csv(&path, too_many).ok();
    assert_eq!(v["applied"], 100_000);
    assert_eq!(count(&api, &net)["pending"], 100_000);
    let page = api.get(&format!("/networks/{net}/users?limit=5")).ok();
    assert_eq!(page["items"].as_array().unwrap().len(), 5);
    assert!(page["next_cursor"].is_string());
}

#[test]
fn bulk_delete_needs_the_acknowledgement_and_takes_the_directory_export() {
    let s = Server::start();
    let api = s.owner();
    let net = api.first_network();
    api.post_csv(
        &format!("/networks/{net}/users/batch-create"),
        common::invite_csv("d", 20),
    )
    .ok();
    let export = api.get(&format!("/networks/{net}/users/export"));
    assert_eq!(export.status, 200);
    assert!(
        export.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let lines: Vec<&str> = export.text.lines().collect();
    assert_eq!(
        lines[0],
        "email,first_name,last_name,country_code,phone,security_group,status"
    );
    assert_eq!(lines.len(), 21);
    assert!(lines[1].ends_with(",Default,pending"), "{}", lines[1]);

    // Keep the first ten rows of the export: those users are deleted, the rest stay.
    let keep: String = lines[..11].iter().map(|l| format!("{l}\r\n")).collect();
    let path = format!("/networks/{net}/users/batch-delete");
    api.post_csv(&path, keep.clone())
        .expect(422, "acknowledgement_required");
    api.post_csv(
        &format!("{path}?acknowledge_irreversible=false"),
        keep.clone(),
    )
    .expect(422, "acknowledgement_required");
    let e = api
        .post_csv(
            &format!("{path}?acknowledge_irreversible=true"),
            format!("{keep}ghost@example.test,,,,,,\r\n"),
        )
        .expect(422, "csv_invalid");
    assert_eq!(report(&e)[0].0, 12);
    assert_eq!(
        count(&api, &net)["total"],
        20,
        "nothing deleted by the bad file"
    );
    let v = api
        .post_csv(&format!("{path}?acknowledge_irreversible=true"), keep)
        .ok();
    assert_eq!(v["applied"], 10);
    assert_eq!(count(&api, &net)["total"], 10);

    // The delete template (one column) works too.
    let tpl = api
        .get(&format!("/networks/{net}/users/templates/delete"))
        .text;
    assert_eq!(tpl.trim(), "email");
    let survivors = api.all_users(&net);
    let one = survivors[0]["username"].as_str().unwrap();
    api.post_csv(
        &format!("{path}?acknowledge_irreversible=true"),
        format!("{tpl}{one}\n"),
    )
    .ok();
    assert_eq!(count(&api, &net)["total"], 9);
}

#[test]
fn bulk_suspend_signs_users_out_and_reports_unknown_addresses() {
    let s = Server::start();
    let api = s.owner();
    let net = api.first_network();
    api.post_csv(
        &format!("/networks/{net}/users/batch-create"),
        common::invite_csv("s", 5),
    )
    .ok();
    let path = format!("/networks/{net}/users/batch-suspend");
    let e = api
        .post_csv(&path, "email\ns0@example.test\nnobody@example.test\n")
        .expect(422, "csv_invalid");
    assert_eq!(report(&e)[0].0, 3);
    assert_eq!(count(&api, &net)["suspended"], 0);
    let v = api
        .post_csv(
            &path,
            "Email\r\ns0@example.test\r\nS1@EXAMPLE.TEST\r\ns0@example.test\r\n",
        )
        .ok();
    assert_eq!(v["applied"], 2);
    assert_eq!(count(&api, &net)["suspended"], 2);
    let audit = api.get("/audit?event_name=BatchSuspendUser").ok();
    let events = audit["items"].as_array().unwrap();
    assert_eq!(events[0]["result"]["status"], "success");
    assert_eq!(events[0]["parameters"]["rows"], 3);
    assert_eq!(events[1]["result"]["error_code"], "csv_invalid");
}

#[test]
fn uploads_over_the_limit_are_refused() {
    let s = Server::builder()
        .env("OUTPOST_HTTP_MAX_UPLOAD_BYTES", "4096")
        .start();
    let api = s.owner();
    let net = api.first_network();
    api.post_csv(
        &format!("/networks/{net}/users/batch-create"),
        common::invite_csv("big", 500),
    )
    .expect(413, "payload_too_large");
    assert_eq!(count(&api, &net)["total"], 0);
}
