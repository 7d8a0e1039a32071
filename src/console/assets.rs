//! The console's stylesheet and script, embedded in the binary (no CDN, no fonts from
//! elsewhere): served with their content types and cached for a day.

use actix_web::HttpResponse;
use actix_web::http::header;

const CSS: &str = include_str!("../../static/console.css");
const JS: &str = include_str!("../../static/console.js");

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}

pub async fn css() -> HttpResponse {
    asset("text/css; charset=utf-8", CSS)
}

pub async fn js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", JS)
}
