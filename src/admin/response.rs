//! How the admin API answers: JSON bodies, the error body, and the handlers for
//! requests that never reach an operation (bad JSON, unknown paths, wrong methods).
//!
//! Every error is `{"code": "...", "message": "...", "details": ...}` with a stable
//! code; the code also travels in the response's extensions so the audit guard can
//! record it without parsing the body.

use crate::error::{Error, Kind};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable code (see docs/ADMIN-API.md).
    pub code: String,
    /// What went wrong, in a sentence for a person.
    pub message: String,
    /// Structured details, when there are any: a list of invalid fields
    /// (`validation_failed`), a CSV row report (`csv_invalid`), …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

/// The error that produced a response, for the audit guard.
#[derive(Debug, Clone)]
pub struct ErrorInfo {
    pub code: &'static str,
    pub message: String,
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        if self.kind == Kind::Internal {
            tracing::error!(code = self.code, "{}", self.message);
        }
        let mut res = HttpResponse::build(self.status_code());
        if let Some(s) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, s.to_string()));
        }
        if self.kind == Kind::Unauthorized {
            res.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"outpost\""));
        }
        let mut res = res.json(ErrorBody {
            code: self.code.to_string(),
            message: self.message.clone(),
            details: self.details.clone(),
        });
        res.extensions_mut().insert(ErrorInfo {
            code: self.code,
            message: self.message.clone(),
        });
        res
    }
}

pub fn ok<T: Serialize>(body: &T) -> HttpResponse {
    HttpResponse::Ok().json(body)
}

pub fn created<T: Serialize>(body: &T) -> HttpResponse {
    HttpResponse::Created().json(body)
}

/// JSON body extractor settings: size limit and errors in our format.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _req| {
            use actix_web::error::JsonPayloadError as J;
            let e = match &err {
                J::OverflowKnownLength { length, limit } => Error::new(
                    Kind::TooLarge,
                    "payload_too_large",
                    format!("the request body is {length} bytes; the limit is {limit}"),
                ),
                J::Overflow { limit } => Error::new(
                    Kind::TooLarge,
                    "payload_too_large",
                    format!("the request body is larger than the limit of {limit} bytes"),
                ),
                J::ContentType => Error::bad_request(
                    "unsupported_content_type",
                    "send the request body as JSON with Content-Type: application/json",
                ),
                J::Deserialize(d) => Error::bad_request(
                    "invalid_json",
                    format!("the request body is not valid for this operation: {d}"),
                ),
                other => Error::bad_request(
                    "invalid_json",
                    format!("the request body cannot be read: {other}"),
                ),
            };
            e.into()
        })
}

/// Query-string extractor settings: errors in our format.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        Error::bad_request(
            "invalid_query",
            format!("the query string is not valid: {err}"),
        )
        .into()
    })
}

/// Read a raw request body (CSV uploads) up to `limit` bytes.
pub async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::Bytes, Error> {
    use futures_util::StreamExt;
    let mut buf = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            Error::bad_request(
                "invalid_body",
                format!("the request body could not be read: {e}"),
            )
        })?;
        if buf.len() + chunk.len() > limit {
            return Err(Error::new(
                Kind::TooLarge,
                "payload_too_large",
                format!(
                    "the upload is larger than the limit of {limit} bytes (http.max_upload_bytes)"
                ),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Path extractor settings: a malformed path parameter reads as "not found".
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _req| {
        Error::not_found("not_found", format!("no such resource: {err}")).into()
    })
}

/// Answer for a path no operation serves.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    Error::not_found(
        "not_found",
        format!("there is nothing at {} {}", req.method(), req.path()),
    )
    .error_response()
}

/// Answer for a method a path does not support, naming the ones it does.
pub fn method_not_allowed(allow: &str) -> HttpResponse {
    let mut res = Error::new(
        Kind::MethodNotAllowed,
        "method_not_allowed",
        format!("this path supports only {allow}"),
    )
    .error_response();
    if let Ok(v) = HeaderValue::from_str(allow) {
        res.headers_mut().insert(header::ALLOW, v);
    }
    res
}

/// A JSON request body that must be an object, decoded strictly into `T`.
///
/// serde's derived structs also accept a JSON array (fields by position), so
/// `[null, null]` would read as "no fields set"; requests are objects, always.
pub struct JsonBody<T>(pub T);

impl<T> JsonBody<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for JsonBody<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: serde::de::DeserializeOwned + 'static> actix_web::FromRequest for JsonBody<T> {
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let json = web::Json::<Value>::from_request(req, payload);
        Box::pin(async move {
            let web::Json(v) = json.await?;
            if !v.is_object() {
                return Err(Error::bad_request(
                    "invalid_json",
                    "the request body must be a JSON object",
                )
                .into());
            }
            serde_json::from_value(v).map(JsonBody).map_err(|e| {
                Error::bad_request(
                    "invalid_json",
                    format!("the request body is not valid for this operation: {e}"),
                )
                .into()
            })
        })
    }
}
