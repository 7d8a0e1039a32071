//! Admin API: online backup. The archive is built from a consistent snapshot while
//! the appliance keeps serving, then streamed to the caller.

use super::State;
use crate::error::{Error, Result};
use crate::store;
use actix_web::HttpResponse;
use futures_util::StreamExt;

#[utoipa::path(post, path = "/backup", operation_id = "CreateBackup", tag = "operations",
    responses((status = 200, content_type = "application/x-tar", body = Vec<u8>,
        description = "A tar archive: MANIFEST.json, outpost.redb, tls/*.pem and the attachments (blobs/sha256/…). Restore with `outpost restore FILE`.")))]
pub async fn create(state: State) -> Result<HttpResponse> {
    let data_dir = state.data_dir.clone();
    let store = state.store.clone();
    let (file, manifest) = super::blocking("the backup", move || {
        let tmp = tempfile::Builder::new()
            .prefix(".backup-out-")
            .tempfile_in(&data_dir)
            .map_err(|e| {
                Error::unavailable("backup_io", format!("cannot create a temporary file: {e}"))
            })?;
        let manifest = store::create_archive(&store, &data_dir, tmp.path())?;
        // The open handle keeps the data readable after the name is gone.
        let file = tmp.reopen().map_err(|e| {
            Error::unavailable("backup_io", format!("cannot reopen the archive: {e}"))
        })?;
        Ok::<_, Error>((file, manifest))
    })
    .await??;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file))
        .map(|r| r.map_err(actix_web::error::ErrorInternalServerError));
    let name = format!(
        "outpost-backup-{}.tar",
        manifest.created_at.format("%Y%m%dT%H%M%SZ")
    );
    Ok(HttpResponse::Ok()
        .content_type("application/x-tar")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header(("X-Outpost-Backup-Records", manifest.records.to_string()))
        .no_chunking(len)
        .streaming(stream))
}
