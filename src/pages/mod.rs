//! Server-rendered pages for people who are not administrators (no JavaScript needed):
//! the registration page an invitation links to ([`registration`]).

pub mod registration;

use std::sync::{Arc, OnceLock};

/// What the pages need, shared by every HTTP worker.
pub struct Pages {
    pub store: crate::store::Store,
    pub tera: tera::Tera,
    /// The appliance's base URL, known once the HTTPS listeners are bound.
    pub public_url: Arc<OnceLock<String>>,
    /// SHA-256 fingerprint of the TLS trust anchor clients should pin.
    pub fingerprint: String,
}

impl Pages {
    pub fn new(
        store: crate::store::Store,
        public_url: Arc<OnceLock<String>>,
        fingerprint: String,
    ) -> Pages {
        let mut tera = tera::Tera::default();
        tera.add_raw_templates(vec![(
            "register.html",
            include_str!("../../templates/register.html"),
        )])
        .expect("embedded templates parse");
        tera.set_escape_fn(crate::html::escape);
        Pages {
            store,
            tera,
            public_url,
            fingerprint,
        }
    }

    /// The base URL for links and commands.
    pub fn server(&self) -> String {
        self.public_url.get().cloned().unwrap_or_default()
    }
}
