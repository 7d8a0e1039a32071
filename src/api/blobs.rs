//! Attachments (PROTOCOL.md §6): start an upload, append chunks at the right
//! offset, read the state to resume, and download with range requests.

use super::{ClientApi, DeviceCaller};
use crate::admin::response::{self, JsonBody};
use crate::error::{Error, Result};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Create {
    size: u64,
}

/// `POST /api/v1/blobs`.
pub async fn create(
    api: web::Data<ClientApi>,
    caller: DeviceCaller,
    body: JsonBody<Create>,
) -> Result<HttpResponse> {
    let relay = &api.relay;
    let b = relay
        .blobs
        .create(&relay.store, caller.0.user_id(), body.into_inner().size)
        .await?;
    Ok(response::created(&b.view(relay.blobs.chunk_max)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offset {
    offset: u64,
}

/// `PUT /api/v1/blobs/{id}?offset=n` with the chunk as the body.
pub async fn append(
    api: web::Data<ClientApi>,
    caller: DeviceCaller,
    path: web::Path<String>,
    q: web::Query<Offset>,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let relay = &api.relay;
    let max = relay.blobs.chunk_max;
    let bytes = response::read_body(payload, max).await.map_err(|e| {
        if e.code == "payload_too_large" || e.kind == crate::error::Kind::TooLarge {
            Error::new(
                crate::error::Kind::TooLarge,
                "chunk_too_large",
                format!("a chunk is at most {max} bytes"),
            )
        } else {
            e
        }
    })?;
    let b = relay
        .blobs
        .append(&relay.store, &path, caller.0.user_id(), q.offset, &bytes)
        .await?;
    Ok(response::ok(&b.view(max)))
}

/// `GET /api/v1/blobs/{id}`: the upload's state.
pub async fn state(
    api: web::Data<ClientApi>,
    caller: DeviceCaller,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let relay = &api.relay;
    let b = relay
        .blobs
        .get_for(&relay.store, &path, caller.0.user_id())?;
    Ok(response::ok(&b.view(relay.blobs.chunk_max)))
}

/// `GET /api/v1/blobs/{id}/content`, with `Range` support.
pub async fn content(
    req: HttpRequest,
    api: web::Data<ClientApi>,
    caller: DeviceCaller,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let relay = &api.relay;
    let b = relay
        .blobs
        .get_for(&relay.store, &path, caller.0.user_id())?;
    let Some(hash) = &b.sha256 else {
        return Err(Error::conflict(
            "upload_incomplete",
            "this attachment is still being uploaded",
        ));
    };
    if b.owner_user_id != caller.0.user_id() && !caller.0.account.policy.file_download {
        return Err(Error::forbidden(
            "file_download_disabled",
            "your security group does not allow downloading files (preview only)",
        ));
    }
    let file = actix_files::NamedFile::open_async(relay.blobs.content_path(hash))
        .await
        .map_err(|_| Error::not_found("blob_not_found", "this attachment is no longer stored"))?
        .set_content_type(actix_files::file_extension_to_mime("bin"))
        .use_etag(true)
        .use_last_modified(false)
        .disable_content_disposition();
    Ok(file.into_response(&req))
}
