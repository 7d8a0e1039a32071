//! The TURN client's error type: every way a request can fail, from the socket to the
//! server's refusal. A refusal keeps the STUN error code and reason phrase the server sent,
//! so tests can assert on them (401, 403, 437, 438, 441, 442, 486, 508, …).

use crate::calling::CodecError;

/// Why a TURN client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    /// A socket operation failed (`what` says which).
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The TLS configuration could not be built or the handshake failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// The server answered with an error response.
    #[error("{method} refused: {code} {reason}")]
    Refused {
        method: &'static str,
        code: u16,
        reason: String,
    },
    /// No response arrived in time (after every retransmission over UDP).
    #[error("no response to {method} after {transmissions} transmission(s) in {waited_ms} ms")]
    Timeout {
        method: &'static str,
        transmissions: u32,
        waited_ms: u64,
    },
    /// The server's answer could not be parsed, or lacks an attribute it must carry.
    #[error("bad response to {method}: {detail}")]
    BadResponse {
        method: &'static str,
        detail: String,
    },
    /// A response's MESSAGE-INTEGRITY(-SHA256) did not verify with our key.
    #[error("the response to {method} failed its integrity check: {source}")]
    Integrity {
        method: &'static str,
        #[source]
        source: CodecError,
    },
    /// A TCP or TLS stream carried bytes that are not TURN frames (it cannot resynchronise).
    #[error("the server's stream is not TURN framing: {0}")]
    Framing(#[source] CodecError),
    /// The server closed the TCP or TLS connection.
    #[error("the server closed the connection")]
    Closed,
    /// The caller asked for something that cannot be encoded (a bad channel number for
    /// ChannelData, a message too long, a request shorter than a STUN header).
    #[error("cannot send: {0}")]
    InvalidInput(String),
}

impl TurnError {
    /// The STUN error code of a refusal, if this is one.
    pub fn code(&self) -> Option<u16> {
        match self {
            TurnError::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        TurnError::Io {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn bad(method: &'static str, detail: impl Into<String>) -> Self {
        TurnError::BadResponse {
            method,
            detail: detail.into(),
        }
    }
}

impl From<CodecError> for TurnError {
    /// Encoding errors (the only codec errors raised while building a request).
    fn from(e: CodecError) -> Self {
        TurnError::InvalidInput(e.to_string())
    }
}
