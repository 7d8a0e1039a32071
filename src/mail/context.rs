//! What a part that queues mail needs to know besides the store: the outbox worker's
//! handle (None while mail is off, and then links are shown instead of mailed), the
//! appliance's base URL that links and mails name (known once the HTTPS listeners are
//! bound), and the host name in `Message-ID`s.

use super::outbox::Outbox;
use crate::auth::password_reset::Delivery;
use std::sync::{Arc, OnceLock};

#[derive(Clone)]
pub struct MailContext {
    pub outbox: Option<Outbox>,
    pub public_url: Arc<OnceLock<String>>,
    pub domain: String,
}

impl MailContext {
    /// Whether mail is on.
    pub fn on(&self) -> bool {
        self.outbox.is_some()
    }

    /// The appliance's base URL (empty before the listeners are bound).
    pub fn base_url(&self) -> String {
        self.public_url.get().cloned().unwrap_or_default()
    }

    /// How links travel, for the functions that issue them.
    pub fn delivery<'a>(&'a self, base_url: &'a str) -> Delivery<'a> {
        Delivery {
            base_url,
            mail: self.on(),
            domain: &self.domain,
        }
    }

    /// Send what was just queued at once.
    pub fn wake(&self) {
        if let Some(o) = &self.outbox {
            o.wake();
        }
    }
}
