//! The guard every admin operation passes: authentication, authorization and audit.
//!
//! Each API resource is wrapped by [`guard`] with the actions its methods perform.
//! Before the handler runs, the guard resolves the bearer token to a [`Caller`],
//! checks the action's permission (and network assignment) and opens an
//! [`AuditScope`]. Handlers that change state commit their audit event in the same
//! transaction as the change ([`Audit::write`]); for everything else — reads,
//! refusals, failures — the guard records the event after the response, so every call
//! is in the log, whatever happens to it.

use super::AdminState;
use super::response::ErrorInfo;
use crate::audit::{self, Actor, Draft, Outcome};
use crate::auth::{Action, Caller, session};
use crate::error::{Error, Result};
use crate::store::Store;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, ResponseError, web};
use chrono::Utc;
use redb::WriteTransaction;
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::future::{Ready, ready};
use std::rc::Rc;

/// The methods of one resource and the actions they perform.
pub type MethodActions = Rc<Vec<(Method, Action)>>;

/// The two fronts the guard stands before: where the admin's session token comes from,
/// and how a refusal (no session, not allowed) is answered. The admin API takes a
/// bearer token and answers JSON; the console takes its session cookie and answers
/// pages. Permissions and the audit record are the same for both.
#[derive(Clone, Copy)]
pub struct Front {
    pub token: fn(&HttpRequest) -> Option<String>,
    pub refuse: fn(&HttpRequest, &Error) -> actix_web::HttpResponse,
}

/// The admin API's front.
pub const API: Front = Front {
    token: |r| bearer_of(r.headers()),
    refuse: |_, e| e.error_response(),
};

/// What the guard knows about a call, shared with the handler.
pub struct AuditScope {
    draft: RefCell<Draft>,
    recorded: RefCell<bool>,
}

impl AuditScope {
    fn new(req: &ServiceRequest, action: Action) -> AuditScope {
        let mut params = Map::new();
        for (k, v) in req.match_info().iter() {
            params.insert(k.to_string(), Value::String(v.to_string()));
        }
        if let Ok(q) = web::Query::<Vec<(String, String)>>::from_query(req.query_string()) {
            for (k, v) in q.into_inner() {
                params.insert(k, Value::String(v));
            }
        }
        let ua = user_agent(req.headers());
        AuditScope {
            draft: RefCell::new(Draft {
                id: uuid::Uuid::new_v4().to_string(),
                name: action.name().to_string(),
                time: Utc::now(),
                admin: None,
                source_ip: source_ip(req.request()),
                user_agent: ua,
                network_id: req.match_info().get("network_id").map(str::to_string),
                parameters: Value::Object(params),
                result: Outcome::success(200),
                read_only: action.read_only(),
            }),
            recorded: RefCell::new(false),
        }
    }

    fn set_admin(&self, caller: &Caller) {
        self.draft.borrow_mut().admin = Some(Actor {
            id: caller.admin.id.clone(),
            username: caller.admin.username.clone(),
            role: caller.admin.role.as_str().to_string(),
        });
    }
}

/// The request's User-Agent, as text (at most 256 characters).
pub fn user_agent(headers: &actix_web::http::header::HeaderMap) -> String {
    headers
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(256)
        .collect()
}

/// The source address of a request, as text.
pub fn source_ip(req: &HttpRequest) -> String {
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Handler-side access to the call's audit event.
#[derive(Clone)]
pub struct Audit(Rc<AuditScope>);

impl Audit {
    /// Add the request body (serialized with secrets redacted) to the parameters.
    pub fn body(&self, body: &impl serde::Serialize) {
        if let (Ok(Value::Object(extra)), Value::Object(params)) = (
            serde_json::to_value(body),
            &mut self.0.draft.borrow_mut().parameters,
        ) {
            params.extend(extra);
        }
    }

    /// Add one parameter.
    pub fn param(&self, key: &str, value: impl Into<Value>) {
        if let Value::Object(params) = &mut self.0.draft.borrow_mut().parameters {
            params.insert(key.to_string(), value.into());
        }
    }

    /// Name the admin when the handler authenticated them itself (sign-in).
    pub fn caller(&self, caller: &Caller) {
        self.0.set_admin(caller);
    }

    /// Apply `f` and this call's success event (HTTP `status`) in one durable commit.
    pub async fn write<R, F>(&self, store: &Store, status: u16, mut f: F) -> Result<R>
    where
        F: FnMut(&WriteTransaction) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let mut draft = self.0.draft.borrow().clone();
        draft.result = Outcome::success(status);
        let r = store
            .write(move |tx| {
                let v = f(tx)?;
                audit::append(tx, &draft)?;
                Ok(v)
            })
            .await?;
        *self.0.recorded.borrow_mut() = true;
        Ok(r)
    }
}

impl FromRequest for Audit {
    type Error = Error;
    type Future = Ready<Result<Audit>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Rc<AuditScope>>()
                .cloned()
                .map(Audit)
                .ok_or_else(|| Error::internal("an operation ran outside the admin guard")),
        )
    }
}

impl FromRequest for Caller {
    type Error = Error;
    type Future = Ready<Result<Caller>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Caller>()
                .cloned()
                .ok_or_else(|| Error::unauthorized("authentication_required", "sign in first")),
        )
    }
}

fn bearer_of(headers: &actix_web::http::header::HeaderMap) -> Option<String> {
    let h = headers.get(actix_web::http::header::AUTHORIZATION)?;
    let v = h.to_str().ok()?.trim();
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// The caller behind the request's session token.
fn authenticate(req: &ServiceRequest, state: &AdminState, front: Front) -> Result<Caller> {
    let Some(token) = (front.token)(req.request()) else {
        return Err(Error::unauthorized(
            "authentication_required",
            "this operation needs an admin session: send Authorization: Bearer <token> \
             (CreateAdminSession: POST /admin/api/v1/sessions)",
        ));
    };
    let (key, _session, admin) = state.store.read(|tx| session::lookup(tx, &token))?;
    Ok(Caller {
        admin,
        session_key: key,
    })
}

/// The middleware body: see the module documentation.
pub async fn guard(
    actions: MethodActions,
    front: Front,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> std::result::Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AdminState>>().cloned() else {
        return Err(Error::internal("the admin API state is missing").into());
    };
    let Some(action) = actions
        .iter()
        .find(|(m, _)| m == req.method())
        .map(|(_, a)| *a)
    else {
        // A method this path does not support: answered 405, and still audited.
        let res = next.call(req).await?.map_into_boxed_body();
        return finish_unrouted(&state, res).await;
    };
    let scope = Rc::new(AuditScope::new(&req, action));
    if action != Action::CreateAdminSession {
        let checked = authenticate(&req, &state, front).and_then(|caller| {
            scope.set_admin(&caller);
            caller.authorize(action, req.match_info().get("network_id"))?;
            Ok(caller)
        });
        match checked {
            Ok(caller) => {
                req.extensions_mut().insert(caller);
            }
            Err(e) => {
                let recorded = record(
                    &state.store,
                    &scope,
                    e.kind.status(),
                    Some((e.code, &e.message)),
                )
                .await;
                let res = match recorded {
                    Ok(()) => (front.refuse)(req.request(), &e),
                    Err(audit_err) => (front.refuse)(req.request(), &audit_err),
                };
                return Ok(req.into_response(res));
            }
        }
    }
    req.extensions_mut().insert(scope.clone());
    let relay = req
        .app_data::<web::Data<std::sync::Arc<crate::relay::Relay>>>()
        .cloned();
    let res = next.call(req).await?.map_into_boxed_body();
    // Any successful change to the directory may touch what the relay enforces
    // (suspensions, policies, consent, retention): it drops its cache and every stream
    // re-checks itself. An admin's own sign-in, sign-out or password change touches
    // nothing the relay reads.
    if !action.read_only()
        && !action.is_self_service()
        && res.status().is_success()
        && let Some(relay) = relay
    {
        relay.directory_changed();
    }
    if *scope.recorded.borrow() {
        return Ok(res);
    }
    let (status, info) = outcome_of(&res);
    let err = info.as_ref().map(|i| (i.code, i.message.as_str()));
    match record(&state.store, &scope, status, err).await {
        Ok(()) => Ok(res),
        Err(e) => {
            let (req, _) = res.into_parts();
            Ok(ServiceResponse::new(req, e.error_response()))
        }
    }
}

/// A response's status and, for errors, the code and message it answered with
/// (`http_error` for an error response that carried no code of ours).
fn outcome_of(res: &ServiceResponse<BoxBody>) -> (u16, Option<ErrorInfo>) {
    let status = res.status().as_u16();
    let info = res
        .response()
        .extensions()
        .get::<ErrorInfo>()
        .cloned()
        .or_else(|| {
            (status >= 400).then(|| ErrorInfo {
                code: "http_error",
                message: String::new(),
            })
        });
    (status, info)
}

/// Audit a call that matched no operation (wrong method, unknown path) under the name
/// `UnknownOperation`, naming the admin if the request carried a valid token.
pub async fn finish_unrouted(
    state: &AdminState,
    res: ServiceResponse<BoxBody>,
) -> std::result::Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let (status, info) = outcome_of(&res);
    let (code, message) = info
        .as_ref()
        .map(|i| (i.code, i.message.as_str()))
        .unwrap_or(("http_error", ""));
    match record_unrouted(state, res.request(), status, code, message).await {
        Ok(()) => Ok(res),
        Err(e) => {
            let (req, _) = res.into_parts();
            Ok(ServiceResponse::new(req, e.error_response()))
        }
    }
}

/// Record an `UnknownOperation` event for `req`, answered with `status` and `code`.
pub async fn record_unrouted(
    state: &AdminState,
    req: &HttpRequest,
    status: u16,
    code: &str,
    message: &str,
) -> Result<()> {
    let caller =
        bearer_of(req.headers()).and_then(|t| state.store.read(|tx| session::lookup(tx, &t)).ok());
    let ua = user_agent(req.headers());
    let draft = Draft {
        id: uuid::Uuid::new_v4().to_string(),
        name: "UnknownOperation".into(),
        time: Utc::now(),
        admin: caller.map(|(_, _, a)| Actor {
            id: a.id,
            username: a.username,
            role: a.role.as_str().to_string(),
        }),
        source_ip: source_ip(req),
        user_agent: ua,
        network_id: None,
        parameters: serde_json::json!({"method": req.method().as_str(), "path": req.path()}),
        result: Outcome::error(status, code, message),
        read_only: true,
    };
    state
        .store
        .write(move |tx| audit::append(tx, &draft).map(|_| ()))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot record an audit event; withholding the answer");
            audit_unavailable()
        })
}

fn audit_unavailable() -> Error {
    Error::unavailable(
        "audit_unavailable",
        "the audit log cannot be written, so the answer is withheld; retry shortly",
    )
}

/// Durably append the call's event (group-committed with others) before the answer
/// leaves: whoever got an answer is in the log.
async fn record(
    store: &Store,
    scope: &AuditScope,
    status: u16,
    err: Option<(&str, &str)>,
) -> Result<()> {
    let mut draft = scope.draft.borrow().clone();
    draft.result = match err {
        Some((code, message)) => Outcome::error(status, code, message),
        None => Outcome::success(status),
    };
    *scope.recorded.borrow_mut() = true;
    store
        .write(move |tx| audit::append(tx, &draft).map(|_| ()))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot record an audit event; withholding the answer");
            audit_unavailable()
        })
}
