//! Bulk operations by CSV (PRODUCT.md F3): invite, delete and suspend users, the
//! templates a person fills in, and the directory export in the same columns.
//!
//! Files are read leniently in form (a UTF-8 byte-order mark, CRLF line ends, quoted
//! commas, header names in any case with spaces — "First Name" — and the directory
//! export's extra columns are all fine) and strictly in content: every bad row is
//! reported with its line, column and reason, and a file with any bad row changes
//! nothing. An unknown column is an error, so a misspelt header never silently drops
//! data.

use super::group::{self, SecurityGroup};
use super::network;
use super::user::{self, Profile, User, UserKind};
use super::validate;
use crate::error::{Error, Result};
use redb::WriteTransaction;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;

/// The columns, in export order; templates use a prefix of them.
pub const COLUMNS: [Column; 7] = [
    Column::Email,
    Column::FirstName,
    Column::LastName,
    Column::CountryCode,
    Column::Phone,
    Column::SecurityGroup,
    Column::Status,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    Email,
    FirstName,
    LastName,
    CountryCode,
    Phone,
    SecurityGroup,
    Status,
}

impl Column {
    pub fn name(self) -> &'static str {
        match self {
            Column::Email => "email",
            Column::FirstName => "first_name",
            Column::LastName => "last_name",
            Column::CountryCode => "country_code",
            Column::Phone => "phone",
            Column::SecurityGroup => "security_group",
            Column::Status => "status",
        }
    }

    /// Recognize a header cell: case, spaces, dashes and common labels do not matter.
    fn parse(header: &str) -> Option<Column> {
        let norm: String = header
            .trim()
            .to_lowercase()
            .chars()
            .map(|c| if c == ' ' || c == '-' { '_' } else { c })
            .collect();
        Some(match norm.as_str() {
            "email" | "e_mail" | "email_address" | "e_mail_address" | "username" => Column::Email,
            "first_name" | "firstname" | "given_name" => Column::FirstName,
            "last_name" | "lastname" | "surname" | "family_name" => Column::LastName,
            "country_code" | "countrycode" => Column::CountryCode,
            "phone" | "phone_number" | "phonenumber" | "cell" => Column::Phone,
            "security_group" | "securitygroup" | "group" => Column::SecurityGroup,
            "status" => Column::Status,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BulkAction {
    Invite,
    Delete,
    Suspend,
}

impl BulkAction {
    pub fn parse(s: &str) -> Option<BulkAction> {
        match s {
            "invite" => Some(BulkAction::Invite),
            "delete" => Some(BulkAction::Delete),
            "suspend" => Some(BulkAction::Suspend),
            _ => None,
        }
    }

    /// Columns of this action's template.
    pub fn template_columns(self) -> &'static [Column] {
        match self {
            BulkAction::Invite => &COLUMNS[..6],
            BulkAction::Delete | BulkAction::Suspend => &COLUMNS[..1],
        }
    }
}

/// The template a person downloads and fills in: the header line.
pub fn template(action: BulkAction) -> String {
    let cols: Vec<&str> = action.template_columns().iter().map(|c| c.name()).collect();
    format!("{}\r\n", cols.join(","))
}

/// One problem in a CSV file.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line of the file (the header is line 1).
    pub line: u64,
    /// The column, if the problem is in one cell.
    pub column: Option<String>,
    pub reason: String,
}

/// The report attached to a refused file (`details` of a `csv_invalid` error).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CsvReport {
    /// Data rows read.
    pub rows: usize,
    /// Every problem found, in line order.
    pub errors: Vec<RowError>,
}

/// What a bulk file did once applied.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BulkResult {
    pub action: BulkAction,
    /// Data rows in the file.
    pub rows: usize,
    /// Users invited, deleted or suspended.
    pub applied: usize,
    /// Ids of the users affected, in file order.
    pub user_ids: Vec<String>,
    /// Invite: each invited user's registration link (while mail is off) or queued mail
    /// (while it is on), in file order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invitations: Vec<BulkInvitation>,
}

/// One invited user of a bulk invite.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BulkInvitation {
    pub user_id: String,
    pub email: String,
    /// The one-time registration link, while mail is off.
    pub url: Option<String>,
    /// The queued invitation mail, while mail is on.
    pub mail_id: Option<String>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// A file read row by row: the well-formed rows, and what was wrong with the others.
/// Content checks ([`apply_invite`] and friends) add their problems to `errors`, so
/// the final report lists every bad row, whatever is wrong with it.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub rows: Vec<Row>,
    pub errors: Vec<RowError>,
    /// Data rows in the file, good and bad.
    pub total: usize,
}

/// One data row: its line and its cells by column.
#[derive(Debug, Clone)]
pub struct Row {
    pub line: u64,
    cells: HashMap<Column, String>,
}

impl Row {
    pub fn get(&self, c: Column) -> Option<&str> {
        self.cells.get(&c).map(String::as_str)
    }
}

fn refused(rows: usize, mut errors: Vec<RowError>) -> Error {
    errors.sort_by_key(|e| e.line);
    let first = &errors[0];
    let message = format!(
        "the file has {} problem{}, so nothing was changed; the first is on line {}{}: {}",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" },
        first.line,
        first
            .column
            .as_ref()
            .map(|c| format!(", column {c}"))
            .unwrap_or_default(),
        first.reason
    );
    Error::invalid("csv_invalid", message).with_details(CsvReport { rows, errors })
}

/// Read an uploaded file for `action`. A file that cannot be used at all (empty, binary,
/// a bad header, too many rows) is an error; problems of single rows are kept in
/// [`Parsed::errors`] for the final report.
pub fn parse(bytes: &[u8], action: BulkAction, max_rows: usize) -> Result<Parsed> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Error::invalid(
            "csv_empty",
            format!(
                "the file is empty; it needs a header line ({}) and one row per user",
                template(action).trim()
            ),
        ));
    }
    if bytes.contains(&0) {
        return Err(Error::invalid(
            "csv_invalid",
            "the file holds binary data (NUL bytes); upload a CSV text file",
        )
        .with_details(CsvReport {
            rows: 0,
            errors: vec![RowError {
                line: 1 + bytes[..bytes.iter().position(|b| *b == 0).unwrap_or(0)]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count() as u64,
                column: None,
                reason: "binary data (a NUL byte)".into(),
            }],
        }));
    }
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut records = rdr.byte_records();
    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => {
            return Err(refused(
                0,
                vec![RowError {
                    line: 1,
                    column: None,
                    reason: format!("the header line cannot be read: {e}"),
                }],
            ));
        }
        None => unreachable!("non-empty input has a first record"),
    };
    let mut errors = Vec::new();
    let mut columns: Vec<Option<Column>> = Vec::new();
    let expected: Vec<&str> = COLUMNS.iter().map(|c| c.name()).collect();
    for cell in header.iter() {
        let text = String::from_utf8_lossy(cell).trim().to_string();
        match Column::parse(&text) {
            Some(c) if columns.contains(&Some(c)) => {
                errors.push(RowError {
                    line: 1,
                    column: Some(text.clone()),
                    reason: format!("column {} appears twice", c.name()),
                });
                columns.push(None);
            }
            Some(c) => columns.push(Some(c)),
            None if text.is_empty() => {
                errors.push(RowError {
                    line: 1,
                    column: None,
                    reason: "a header cell is empty; every column needs a name".into(),
                });
                columns.push(None);
            }
            None => {
                errors.push(RowError {
                    line: 1,
                    column: Some(text.clone()),
                    reason: format!(
                        "unknown column {text:?}; the first line must name the columns, from: {}",
                        expected.join(", ")
                    ),
                });
                columns.push(None);
            }
        }
    }
    if !columns.contains(&Some(Column::Email)) {
        errors.push(RowError {
            line: 1,
            column: Some("email".into()),
            reason: "the header has no email column; it is required".into(),
        });
    }
    if !errors.is_empty() {
        return Err(refused(0, errors));
    }

    // The reader's own line counter is unreliable with CRLF; count from byte offsets.
    let mut lines = LineCounter::new(bytes);
    let mut rows = Vec::new();
    for rec in records {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = lines.line_at(e.position().map(|p| p.byte()).unwrap_or(0));
                errors.push(RowError {
                    line,
                    column: None,
                    reason: format!("the line cannot be read as CSV: {e}"),
                });
                continue;
            }
        };
        let line = lines.line_at(rec.position().map(|p| p.byte()).unwrap_or(0));
        if rec.iter().all(|c| c.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        if rows.len() + errors.len() >= max_rows {
            return Err(Error::invalid(
                "csv_too_many_rows",
                format!("the file has more than {max_rows} rows; split it into smaller files"),
            ));
        }
        if rec.len() != columns.len() {
            errors.push(RowError {
                line,
                column: None,
                reason: format!(
                    "has {} cells but the header names {} columns",
                    rec.len(),
                    columns.len()
                ),
            });
            continue;
        }
        let mut cells = HashMap::new();
        let mut bad = false;
        for (cell, col) in rec.iter().zip(&columns) {
            let col = col.expect("header errors returned above");
            match std::str::from_utf8(cell) {
                Ok(s) => {
                    cells.insert(col, s.trim().to_string());
                }
                Err(_) => {
                    errors.push(RowError {
                        line,
                        column: Some(col.name().into()),
                        reason: "is not UTF-8 text; save the file as CSV UTF-8".into(),
                    });
                    bad = true;
                }
            }
        }
        if !bad {
            rows.push(Row { line, cells });
        }
    }
    if rows.is_empty() && errors.is_empty() {
        return Err(Error::invalid(
            "csv_empty",
            "the file has a header but no rows; add one row per user",
        ));
    }
    Ok(Parsed {
        total: rows.len() + errors.len(),
        rows,
        errors,
    })
}

/// Turns increasing byte offsets into 1-based line numbers in one pass over the file.
struct LineCounter<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        LineCounter {
            bytes,
            offset: 0,
            line: 1,
        }
    }

    fn line_at(&mut self, byte: u64) -> u64 {
        // With CRLF the reader reports a record as starting on the `\n` before it.
        let mut to = (byte as usize).min(self.bytes.len());
        while to < self.bytes.len() && matches!(self.bytes[to], b'\n' | b'\r') {
            to += 1;
        }
        if to > self.offset {
            self.line += self.bytes[self.offset..to]
                .iter()
                .filter(|b| **b == b'\n')
                .count() as u64;
            self.offset = to;
        }
        self.line
    }
}

fn refuse_under_sso(net: &network::Network, action: BulkAction) -> Result<()> {
    if net.sso_enabled && action != BulkAction::Invite {
        return Err(Error::invalid(
            "sso_enabled",
            "bulk delete and bulk suspend are not available while single sign-on is on; \
             manage these users at the identity provider",
        ));
    }
    Ok(())
}

/// Invite every row as a pending user, or nothing.
pub fn apply_invite(tx: &WriteTransaction, network_id: &str, file: &Parsed) -> Result<BulkResult> {
    let net = network::get(tx, network_id)?;
    let groups = group::list(tx, network_id)?;
    let default = groups
        .iter()
        .find(|g| g.is_default)
        .cloned()
        .ok_or_else(|| Error::internal("the network has no default group"))?;
    let mut errors = file.errors.clone();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut users = Vec::with_capacity(file.rows.len());
    for row in &file.rows {
        match prepare_invite(tx, &net, &groups, &default, row, &mut seen) {
            Ok(u) => users.push(u),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if !errors.is_empty() {
        return Err(refused(file.total, errors));
    }
    let mut ids = Vec::with_capacity(users.len());
    for u in &users {
        user::put(tx, None, u)?;
        ids.push(u.id.clone());
    }
    Ok(BulkResult {
        action: BulkAction::Invite,
        rows: file.total,
        applied: users.len(),
        user_ids: ids,
        invitations: Vec::new(),
    })
}

fn prepare_invite(
    tx: &WriteTransaction,
    net: &network::Network,
    groups: &[SecurityGroup],
    default: &SecurityGroup,
    row: &Row,
    seen: &mut HashMap<String, u64>,
) -> std::result::Result<User, Vec<RowError>> {
    let err = |col: Column, reason: String| RowError {
        line: row.line,
        column: Some(col.name().into()),
        reason,
    };
    let mut errors = Vec::new();
    let email = match validate::email(row.get(Column::Email).unwrap_or("")) {
        Ok(e) => e,
        Err(reason) => {
            errors.push(err(Column::Email, reason));
            String::new()
        }
    };
    if !email.is_empty() {
        if let Some(first) = seen.insert(email.clone(), row.line) {
            errors.push(err(
                Column::Email,
                format!("{email} is also on line {first}"),
            ));
        } else {
            match user::by_name(tx, &net.id, UserKind::User, &email) {
                Ok(Some(_)) => errors.push(err(
                    Column::Email,
                    format!("{email} is already in this network's directory"),
                )),
                Ok(None) => {}
                Err(e) => errors.push(err(Column::Email, e.message)),
            }
        }
    }
    let group = match row.get(Column::SecurityGroup).filter(|g| !g.is_empty()) {
        None => default.clone(),
        Some(name) => match group::find(groups, name) {
            Some(g) => g,
            None => {
                errors.push(err(
                    Column::SecurityGroup,
                    format!("the network has no security group named {name:?}"),
                ));
                default.clone()
            }
        },
    };
    let mut u = User::new(&net.id, UserKind::User, email, group.id);
    let profile = Profile {
        first_name: row.get(Column::FirstName).map(str::to_string),
        last_name: row.get(Column::LastName).map(str::to_string),
        country_code: row.get(Column::CountryCode).map(str::to_string),
        phone: row.get(Column::Phone).map(str::to_string),
    };
    for p in profile.apply(&mut u, &|f| f.to_string()) {
        errors.push(RowError {
            line: row.line,
            column: Some(p.field),
            reason: p.reason,
        });
    }
    if errors.is_empty() {
        Ok(u)
    } else {
        Err(errors)
    }
}

/// Resolve every row to an existing user, or report the rows that do not match.
fn resolve(tx: &WriteTransaction, network_id: &str, file: &Parsed) -> Result<Vec<User>> {
    let mut errors = file.errors.clone();
    let mut users: Vec<User> = Vec::with_capacity(file.rows.len());
    let mut seen = std::collections::HashSet::new();
    for row in &file.rows {
        let raw = row.get(Column::Email).unwrap_or("");
        match validate::email(raw) {
            Err(reason) => errors.push(RowError {
                line: row.line,
                column: Some("email".into()),
                reason,
            }),
            Ok(email) => match user::by_name(tx, network_id, UserKind::User, &email)? {
                Some(u) => {
                    if seen.insert(u.id.clone()) {
                        users.push(u);
                    }
                }
                None => errors.push(RowError {
                    line: row.line,
                    column: Some("email".into()),
                    reason: format!("no user with e-mail {email} in this network"),
                }),
            },
        }
    }
    if !errors.is_empty() {
        return Err(refused(file.total, errors));
    }
    Ok(users)
}

/// Delete every listed user, or nothing.
pub fn apply_delete(tx: &WriteTransaction, network_id: &str, file: &Parsed) -> Result<BulkResult> {
    let net = network::get(tx, network_id)?;
    refuse_under_sso(&net, BulkAction::Delete)?;
    let users = resolve(tx, network_id, file)?;
    for u in &users {
        user::remove(tx, u)?;
    }
    Ok(BulkResult {
        action: BulkAction::Delete,
        rows: file.total,
        applied: users.len(),
        user_ids: users.into_iter().map(|u| u.id).collect(),
        invitations: Vec::new(),
    })
}

/// Suspend every listed user (signing out their devices), or nothing.
pub fn apply_suspend(tx: &WriteTransaction, network_id: &str, file: &Parsed) -> Result<BulkResult> {
    let net = network::get(tx, network_id)?;
    refuse_under_sso(&net, BulkAction::Suspend)?;
    let users = resolve(tx, network_id, file)?;
    for u in &users {
        user::set_suspended(tx, u, true)?;
    }
    Ok(BulkResult {
        action: BulkAction::Suspend,
        rows: file.total,
        applied: users.len(),
        user_ids: users.into_iter().map(|u| u.id).collect(),
        invitations: Vec::new(),
    })
}

/// The team directory as CSV, in [`COLUMNS`] order.
pub fn export<'a>(tx: impl Into<crate::store::Tx<'a>>, network_id: &str) -> Result<Vec<u8>> {
    let tx = tx.into();
    let groups: HashMap<String, String> = group::list(tx, network_id)?
        .into_iter()
        .map(|g| (g.id, g.name))
        .collect();
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let header: Vec<&str> = COLUMNS.iter().map(|c| c.name()).collect();
    let io = |e: csv::Error| Error::internal(format!("cannot write CSV: {e}"));
    w.write_record(&header).map_err(io)?;
    let mut q = user::ListQuery {
        limit: user::PAGE_MAX,
        ..Default::default()
    };
    loop {
        let (page, next) = user::list(tx, network_id, UserKind::User, &q)?;
        for u in &page {
            w.write_record([
                u.username.as_str(),
                &u.first_name,
                &u.last_name,
                &u.country_code,
                &u.phone,
                groups.get(&u.group_id).map(String::as_str).unwrap_or(""),
                u.status().as_str(),
            ])
            .map_err(io)?;
        }
        match next {
            Some(n) => q.after = Some(n.into_bytes()),
            None => break,
        }
    }
    w.into_inner()
        .map_err(|e| Error::internal(format!("cannot write CSV: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(e: Error) -> Vec<RowError> {
        serde_json::from_value::<CsvReport>(e.details.unwrap())
            .unwrap()
            .errors
    }

    /// Problems of a file, whether it is refused at once or row by row.
    fn problems(bytes: &[u8], action: BulkAction) -> Vec<RowError> {
        match parse(bytes, action, 10) {
            Ok(p) => p.errors,
            Err(e) => report(e),
        }
    }

    #[test]
    fn bom_crlf_quoted_commas_and_label_headers_are_read() {
        let file = "\u{feff}E-mail,First Name,Last Name,Group\r\n\
                    a@x.test,\"Smith, Jr.\",Ann,Default\r\n\r\n\
                    b@x.test,Bo,,\r\n";
        let parsed = parse(file.as_bytes(), BulkAction::Invite, 10).unwrap();
        assert!(parsed.errors.is_empty());
        let rows = parsed.rows;
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].get(Column::FirstName), Some("Smith, Jr."));
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[1].line, 4);
    }

    #[test]
    fn bad_files_are_reported_row_by_row() {
        let e = parse(b"", BulkAction::Delete, 10).unwrap_err();
        assert_eq!(e.code, "csv_empty");
        let e = parse(b"email\n", BulkAction::Delete, 10).unwrap_err();
        assert_eq!(e.code, "csv_empty");
        let e = parse(b"email,nickname\na@x.test,z\n", BulkAction::Invite, 10).unwrap_err();
        assert_eq!(report(e)[0].column.as_deref(), Some("nickname"));
        let e = parse(b"first_name\nann\n", BulkAction::Invite, 10).unwrap_err();
        assert!(report(e)[0].reason.contains("no email column"));
        let r = problems(b"email,phone\na@x.test\nb@x.test,1,2\n", BulkAction::Invite);
        assert_eq!(r.iter().map(|x| x.line).collect::<Vec<_>>(), vec![2, 3]);
        let r = problems(b"email\na@x.test\n\xff\xfe@x\n", BulkAction::Delete);
        assert_eq!(r[0].line, 3);
        let e = parse(b"\x00\x01\x02garbage", BulkAction::Delete, 10).unwrap_err();
        assert_eq!(e.code, "csv_invalid");
        let e = parse(b"email\na@x\nb@x\nc@x\n", BulkAction::Delete, 2).unwrap_err();
        assert_eq!(e.code, "csv_too_many_rows");
    }

    #[test]
    fn templates_name_their_columns() {
        assert_eq!(
            template(BulkAction::Invite),
            "email,first_name,last_name,country_code,phone,security_group\r\n"
        );
        assert_eq!(template(BulkAction::Delete), "email\r\n");
    }
}
