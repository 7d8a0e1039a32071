//! The reference client of the outpost messaging protocol (`docs/PROTOCOL.md`): the
//! end-to-end encryption ([`crypto`], [`envelope`], [`files`]), the REST API ([`api`]),
//! the device stream over WebSocket or QUIC ([`stream`], [`framing`]), the saved device
//! identity ([`profile`]), single sign-on through an identity provider ([`sso`]) and the
//! high-level [`session::Session`] that the `outpost client …` commands, the tests and
//! the benchmarks use.

pub mod api;
pub mod content;
pub mod crypto;
pub mod envelope;
pub mod files;
pub mod framing;
pub mod hpke_open;
pub mod profile;
pub mod session;
pub mod sso;
pub mod stream;
pub mod tls;

pub use api::{ApiClient, ApiError};
pub use content::{FileRef, ReceivedMessage};
pub use crypto::DeviceKeys;
pub use profile::Profile;
pub use session::{Accepted, Appliance, Event, LoginRequest, Ready, Refusal, Session, login};
pub use sso::{SsoLoginRequest, login_sso};
pub use stream::{Stream, StreamConfig, Transport};
pub use tls::Trust;
