//! Output for people (aligned tables, key/value lists) and scripts (`--json`).

use serde_json::Value;

/// A cell as text: strings bare, null empty, everything else as JSON.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Print `rows` (objects) under `columns` as an aligned table; `(header, json key)`.
pub fn table(rows: &[Value], columns: &[(&str, &str)]) {
    let data: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|(_, k)| cell(pointer(r, k))).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (h, _))| {
            data.iter()
                .map(|r| r[i].chars().count())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        println!("{}", s.trim_end());
    };
    line(columns.iter().map(|(h, _)| h.to_string()).collect());
    for r in data {
        line(r);
    }
}

fn pointer<'a>(v: &'a Value, key: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    let mut cur = v;
    for part in key.split('.') {
        cur = cur.get(part).unwrap_or(&NULL);
    }
    cur
}

/// Print an object's fields as `key: value` lines (nested objects flattened with dots).
pub fn fields(v: &Value) {
    let mut lines = Vec::new();
    flatten("", v, &mut lines);
    let w = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, val) in lines {
        println!("{k:<w$}  {val}");
    }
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, child, out);
            }
        }
        other => out.push((prefix.to_string(), cell(other))),
    }
}

pub fn json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).expect("json prints"));
}
