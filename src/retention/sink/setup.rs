//! The sink pipeline a configuration asks for: the local folder, then the age step when
//! `[retention] age_recipients` (or `age_recipients_file`) is set, then the S3 upload
//! when `[retention.s3] bucket` is set (encryption before upload: the bucket only ever
//! holds sealed files then).

use super::age::AgeSink;
use super::s3::S3Sink;
use super::{LocalSink, Pipeline};
use crate::retention::config::RetentionConfig;
use crate::retention::seal::Sealer;
use anyhow::Context;
use std::sync::Arc;

/// Build the pipeline; fails (start-up stops) when the recipients file cannot be read
/// or the bucket's secret is missing, rather than keep files against the site's policy.
pub fn pipeline(config: &RetentionConfig) -> anyhow::Result<Pipeline> {
    let mut p = Pipeline::new(vec![Arc::new(LocalSink)]);
    let file = Some(config.age_recipients_file.as_path()).filter(|f| !f.as_os_str().is_empty());
    if let Some(sealer) = Sealer::from_config(&config.age_recipients, file)? {
        p.push(Arc::new(AgeSink::new(sealer)));
    }
    if config.s3.enabled() {
        let s3 = S3Sink::new(&config.s3)
            .context("retention.s3")?
            .on_error(|| crate::retention::metrics::S3_POST_ERRORS.inc());
        p.push(Arc::new(s3));
    }
    Ok(p)
}
