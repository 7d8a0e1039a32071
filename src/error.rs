//! The one error type every part of outpost returns to its callers.
//!
//! An [`Error`] carries a stable machine-readable `code` (documented in
//! `docs/ADMIN-API.md`), a sentence for a person, optional structured `details`
//! (for example the row-by-row report of a bad CSV file) and a [`Kind`] that decides
//! the HTTP status. Parts construct errors with the helpers below; HTTP handlers only
//! map them, they never invent codes of their own.

use serde::Serialize;
use serde_json::Value;
use std::fmt;

/// The class of an error; it decides the HTTP status and whether the caller may retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The request is malformed (bad JSON, bad CSV encoding, missing parameter).
    BadRequest,
    /// No valid credentials were presented.
    Unauthorized,
    /// Credentials are valid but the action is not allowed.
    Forbidden,
    /// The named resource does not exist.
    NotFound,
    /// The path exists but does not support the method.
    MethodNotAllowed,
    /// The request conflicts with existing state (duplicate e-mail, wrong state).
    Conflict,
    /// The request is well-formed but a value is out of range or a rule is broken.
    Invalid,
    /// The request body is larger than allowed.
    TooLarge,
    /// Too many attempts; retry later.
    RateLimited,
    /// The appliance cannot serve the request right now (store failure, shutting down).
    Unavailable,
    /// A bug or an unexpected failure; the message says what was being done.
    Internal,
}

impl Kind {
    /// The HTTP status code for this class.
    pub fn status(self) -> u16 {
        match self {
            Kind::BadRequest => 400,
            Kind::Unauthorized => 401,
            Kind::Forbidden => 403,
            Kind::NotFound => 404,
            Kind::MethodNotAllowed => 405,
            Kind::Conflict => 409,
            Kind::Invalid => 422,
            Kind::TooLarge => 413,
            Kind::RateLimited => 429,
            Kind::Unavailable => 503,
            Kind::Internal => 500,
        }
    }
}

/// An error with a stable code, a human sentence and optional details.
#[derive(Debug, Clone)]
pub struct Error {
    pub kind: Kind,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
    /// Seconds after which a retry makes sense (rate limits, lockouts).
    pub retry_after: Option<u64>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: Kind, code: &'static str, message: impl Into<String>) -> Self {
        Error {
            kind,
            code,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Kind::BadRequest, code, message)
    }
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Kind::Unauthorized, code, message)
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Kind::Forbidden, code, message)
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Kind::NotFound, code, message)
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Kind::Conflict, code, message)
    }
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Kind::Invalid, code, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Kind::Internal, "internal_error", message)
    }
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Kind::Unavailable, code, message)
    }

    /// Attach structured details (shown to API clients as `details`).
    pub fn with_details(mut self, details: impl Serialize) -> Self {
        self.details = serde_json::to_value(details).ok();
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// A validation error listing every offending field.
    pub fn validation(problems: Vec<FieldProblem>) -> Self {
        let message = match problems.as_slice() {
            [one] => format!("{}: {}", one.field, one.reason),
            many => format!(
                "{} values are invalid; the first is {}: {}",
                many.len(),
                many[0].field,
                many[0].reason
            ),
        };
        Self::invalid("validation_failed", message).with_details(problems)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for Error {}

/// One invalid field in a request, by dotted path (`settings.calling.video`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldProblem {
    pub field: String,
    pub reason: String,
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldProblem {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Collects field problems while validating, then turns them into one error.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<FieldProblem>);

impl Problems {
    pub fn push(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.push(FieldProblem::new(field, reason));
    }
    pub fn check(&mut self, ok: bool, field: &str, reason: impl FnOnce() -> String) {
        if !ok {
            self.push(field, reason());
        }
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn into_result(self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::validation(self.0))
        }
    }
}
