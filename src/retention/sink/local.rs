//! The local folder sink: finished files stay where the exporter wrote them.

use super::{Finished, Sink, StepFuture};

/// Keeps every finished file in the retention folder (the default).
pub struct LocalSink;

impl Sink for LocalSink {
    fn name(&self) -> &'static str {
        "local"
    }

    fn deliver<'a>(&'a self, file: Finished) -> StepFuture<'a> {
        Box::pin(async move { Ok(Some(file)) })
    }
}
