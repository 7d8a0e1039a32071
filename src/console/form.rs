//! Console forms: an extractor that reads a URL-encoded form and refuses it unless it
//! carries the session's CSRF token — before the handler runs, so a forged form changes
//! nothing (the guard still records the refusal in the audit log).

use super::Console;
use super::cookie::{self, CSRF_FIELD};
use crate::error::Error;
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

/// The largest form body the console reads (bulk CSV uploads have their own limit).
pub const MAX_FORM: usize = 256 * 1024;

/// The form extractor's configuration.
pub fn config() -> web::FormConfig {
    web::FormConfig::default()
        .limit(MAX_FORM)
        .error_handler(|e, req| {
            page_error(
                req,
                Error::bad_request("invalid_form", format!("the form could not be read: {e}")),
            )
        })
}

/// `e` answered as a console page, as an extractor's error.
pub fn page_error(req: &HttpRequest, e: Error) -> actix_web::Error {
    actix_web::error::InternalError::from_response(e.code, super::page::refusal(req, &e)).into()
}

/// A form of the signed-in admin's session, CSRF-checked.
pub struct Form<T>(pub T);

fn csrf_refusal() -> Error {
    Error::forbidden(
        "csrf_failed",
        "this form is not from your current console session (it is old, or another site \
         sent it); go back, reload the page and try again",
    )
}

impl<T: DeserializeOwned + 'static> FromRequest for Form<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Form<T>, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let fut = web::Form::<HashMap<String, String>>::from_request(&req, payload);
        Box::pin(async move {
            let fields = fut.await?.into_inner();
            let Some(console) = req.app_data::<web::Data<Console>>() else {
                return Err(page_error(
                    &req,
                    Error::internal("the console's state is missing"),
                ));
            };
            let session = cookie::session_token(&req).unwrap_or_default();
            let given = fields.get(CSRF_FIELD).map(String::as_str).unwrap_or("");
            if session.is_empty() || !console.csrf.check(&session, given) {
                return Err(page_error(&req, csrf_refusal()));
            }
            serde_json::to_value(&fields)
                .and_then(serde_json::from_value)
                .map(Form)
                .map_err(|e| {
                    page_error(
                        &req,
                        Error::bad_request("invalid_form", format!("the form is incomplete: {e}")),
                    )
                })
        })
    }
}
