//! Building an outgoing envelope (encrypt, seal the key to every recipient device, sign)
//! and opening a delivery (verify, open the sealed key, decrypt), on top of [`crypto`].
//!
//! [`crypto`]: super::crypto

use anyhow::{Context, Result, bail};
use base64::Engine;
use rand::{CryptoRng, RngCore};

use super::api::ConversationDevice;
use super::crypto::{self, CryptoError, DeviceKeys, EnvelopeFields};
use crate::relay::frame::{
    Attachment, Delivery, Kind, MAX_CIPHERTEXT, OutgoingEnvelope, SealedKey,
};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The metadata of an envelope that is not cryptographic.
#[derive(Debug, Clone, Default)]
pub struct EnvelopeOptions {
    /// Expiration timer; `None` = the sender group's maximum.
    pub ttl_secs: Option<u64>,
    /// Burn-on-read timer, 0 = off.
    pub bor_secs: u64,
    pub forwarded: bool,
    pub attachments: Vec<Attachment>,
}

/// What is being sent, by whom.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub sender_device_id: &'a str,
    pub conversation_id: &'a str,
    pub client_msg_id: &'a str,
    pub kind: Kind,
    /// The content JSON's bytes.
    pub content: &'a [u8],
}

/// Encrypt and sign an envelope for every device in `devices` except the sender's own.
pub fn seal_envelope<R: CryptoRng + RngCore>(
    rng: &mut R,
    keys: &DeviceKeys,
    out: &Outgoing<'_>,
    devices: &[ConversationDevice],
    options: EnvelopeOptions,
) -> Result<OutgoingEnvelope> {
    let aad = crypto::content_aad(out.conversation_id, out.client_msg_id, out.kind)?;
    let k = crypto::content_key(rng);
    let ciphertext = crypto::encrypt_content(rng, &k, &aad, out.content)?;
    if ciphertext.len() > MAX_CIPHERTEXT {
        bail!(
            "the message is too large: {} bytes encrypted, at most {MAX_CIPHERTEXT}",
            ciphertext.len()
        );
    }
    let mut sealed = Vec::with_capacity(devices.len());
    for d in devices {
        if d.device_id == out.sender_device_id {
            continue;
        }
        let pk = B64.decode(&d.x25519).with_context(|| {
            format!(
                "device {} has an X25519 key that is not base64",
                d.device_id
            )
        })?;
        let s = crypto::seal_content_key(rng, &pk, &aad, &k)
            .with_context(|| format!("cannot seal the message to device {}", d.device_id))?;
        sealed.push(SealedKey {
            device_id: d.device_id.clone(),
            sealed: B64.encode(s),
        });
    }
    let fields = EnvelopeFields {
        conversation_id: out.conversation_id,
        client_msg_id: out.client_msg_id,
        kind: out.kind,
        sender_device_id: out.sender_device_id,
    };
    let signature = keys.sign_envelope(&fields, &ciphertext)?;
    Ok(OutgoingEnvelope {
        conversation_id: out.conversation_id.to_string(),
        client_msg_id: out.client_msg_id.to_string(),
        kind: out.kind,
        ttl_secs: options.ttl_secs,
        bor_secs: options.bor_secs,
        forwarded: options.forwarded,
        keys: sealed,
        ciphertext: B64.encode(&ciphertext),
        attachments: options.attachments,
        signature: B64.encode(signature),
    })
}

/// Verify a delivery against the sender device's Ed25519 key (base64), open this
/// device's sealed key and decrypt: the content JSON's bytes.
pub fn open_delivery(
    keys: &DeviceKeys,
    d: &Delivery,
    sender_ed25519: &str,
) -> Result<Vec<u8>, CryptoError> {
    open_deliveries(keys, &[(d, sender_ed25519)])
        .pop()
        .unwrap_or(Err(CryptoError::Decrypt))
}

/// The decoded binary fields of a delivery.
struct Decoded {
    ciphertext: Vec<u8>,
    signature: Vec<u8>,
    sealed: Vec<u8>,
    public: Vec<u8>,
}

fn decode(d: &Delivery, sender_ed25519: &str) -> Result<Decoded, CryptoError> {
    let bad = |what: &str| CryptoError::Invalid(format!("the delivery's {what} is not base64"));
    Ok(Decoded {
        ciphertext: B64.decode(&d.ciphertext).map_err(|_| bad("ciphertext"))?,
        signature: B64.decode(&d.signature).map_err(|_| bad("signature"))?,
        sealed: B64.decode(&d.sealed_key).map_err(|_| bad("sealed key"))?,
        public: B64
            .decode(sender_ed25519)
            .map_err(|_| CryptoError::Invalid("the sender's Ed25519 key is not base64".into()))?,
    })
}

fn fields(d: &Delivery) -> EnvelopeFields<'_> {
    EnvelopeFields {
        conversation_id: &d.conversation_id,
        client_msg_id: &d.client_msg_id,
        kind: d.kind,
        sender_device_id: &d.sender_device_id,
    }
}

/// [`open_delivery`] for many deliveries to this device (each with its sender device's
/// Ed25519 key), checking their signatures in one batch
/// ([`crypto::verify_envelopes`]); the answers are in `batch`'s order.
pub fn open_deliveries(
    keys: &DeviceKeys,
    batch: &[(&Delivery, &str)],
) -> Vec<Result<Vec<u8>, CryptoError>> {
    let decoded: Vec<Result<Decoded, CryptoError>> =
        batch.iter().map(|(d, k)| decode(d, k)).collect();
    let signed: Vec<crypto::SignedEnvelope<'_>> = batch
        .iter()
        .zip(&decoded)
        .filter_map(|((d, _), x)| {
            let x = x.as_ref().ok()?;
            Some(crypto::SignedEnvelope {
                ed25519_public: &x.public,
                fields: fields(d),
                ciphertext: &x.ciphertext,
                signature: &x.signature,
            })
        })
        .collect();
    let mut verified = crypto::verify_envelopes(&signed).into_iter();
    batch
        .iter()
        .zip(decoded)
        .map(|((d, _), x)| {
            let x = x?;
            verified.next().unwrap_or(Err(CryptoError::Signature))?;
            let aad = crypto::content_aad(&d.conversation_id, &d.client_msg_id, d.kind)?;
            let k = keys.open_content_key(&aad, &x.sealed)?;
            crypto::decrypt_content(&k, &aad, &x.ciphertext)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(user: &str, id: &str, k: &DeviceKeys) -> ConversationDevice {
        ConversationDevice {
            user_id: user.into(),
            device_id: id.into(),
            x25519: B64.encode(k.x25519_public()),
            ed25519: B64.encode(k.ed25519_public()),
            compliance: false,
        }
    }

    fn deliver(e: &OutgoingEnvelope, to: &str, sender_device: &str) -> Delivery {
        Delivery {
            seq: 1,
            server_time: 0,
            conversation_id: e.conversation_id.clone(),
            sender_user_id: "alice".into(),
            sender_device_id: sender_device.into(),
            client_msg_id: e.client_msg_id.clone(),
            kind: e.kind,
            expires_at: 0,
            bor_secs: e.bor_secs,
            forwarded: e.forwarded,
            sealed_key: e
                .keys
                .iter()
                .find(|k| k.device_id == to)
                .unwrap()
                .sealed
                .clone(),
            ciphertext: e.ciphertext.clone(),
            attachments: e.attachments.clone(),
            signature: e.signature.clone(),
        }
    }

    #[test]
    fn seal_and_open() {
        let mut rng = rand::rng();
        let alice = DeviceKeys::generate(&mut rng);
        let alice2 = DeviceKeys::generate(&mut rng);
        let bob = DeviceKeys::generate(&mut rng);
        let devices = vec![
            device("alice", "a1", &alice),
            device("alice", "a2", &alice2),
            device("bob", "b1", &bob),
        ];
        let out = Outgoing {
            sender_device_id: "a1",
            conversation_id: "c",
            client_msg_id: "m",
            kind: Kind::Text,
            content: br#"{"text":"hi"}"#,
        };
        let e =
            seal_envelope(&mut rng, &alice, &out, &devices, EnvelopeOptions::default()).unwrap();
        let ids: Vec<&str> = e.keys.iter().map(|k| k.device_id.as_str()).collect();
        assert_eq!(ids, ["a2", "b1"]);
        let alice_pub = B64.encode(alice.ed25519_public());
        assert_eq!(
            open_delivery(&bob, &deliver(&e, "b1", "a1"), &alice_pub).unwrap(),
            out.content
        );
        assert_eq!(
            open_delivery(&alice2, &deliver(&e, "a2", "a1"), &alice_pub).unwrap(),
            out.content
        );
        // A delivery claiming another sender device fails the signature.
        assert_eq!(
            open_delivery(&bob, &deliver(&e, "b1", "a2"), &alice_pub),
            Err(CryptoError::Signature)
        );
        // Another device's sealed key does not open.
        assert_eq!(
            open_delivery(&bob, &deliver(&e, "a2", "a1"), &alice_pub),
            Err(CryptoError::Decrypt)
        );
        // A changed kind fails.
        let mut d = deliver(&e, "b1", "a1");
        d.kind = Kind::Edit;
        assert!(open_delivery(&bob, &d, &alice_pub).is_err());
        // Garbage is an error, not a panic.
        let mut d = deliver(&e, "b1", "a1");
        d.ciphertext = "%%%".into();
        assert!(open_delivery(&bob, &d, &alice_pub).is_err());
        assert!(open_delivery(&bob, &deliver(&e, "b1", "a1"), "AAAA").is_err());
    }

    #[test]
    fn a_batch_fails_only_the_deliveries_that_are_bad() {
        let mut rng = rand::rng();
        let alice = DeviceKeys::generate(&mut rng);
        let bob = DeviceKeys::generate(&mut rng);
        let devices = vec![device("alice", "a1", &alice), device("bob", "b1", &bob)];
        let alice_pub = B64.encode(alice.ed25519_public());
        let envelopes: Vec<OutgoingEnvelope> = (0..6)
            .map(|i| {
                let id = format!("m{i}");
                let content = format!(r#"{{"text":"hi {i}"}}"#);
                let out = Outgoing {
                    sender_device_id: "a1",
                    conversation_id: "c",
                    client_msg_id: &id,
                    kind: Kind::Text,
                    content: content.as_bytes(),
                };
                seal_envelope(&mut rng, &alice, &out, &devices, EnvelopeOptions::default()).unwrap()
            })
            .collect();
        let mut ds: Vec<Delivery> = envelopes.iter().map(|e| deliver(e, "b1", "a1")).collect();
        ds[1].signature = envelopes[2].signature.clone(); // another message's signature
        ds[3].ciphertext = "%%%".into(); // not base64
        let batch: Vec<(&Delivery, &str)> = ds.iter().map(|d| (d, alice_pub.as_str())).collect();
        let opened = open_deliveries(&bob, &batch);
        assert_eq!(opened.len(), 6);
        assert_eq!(opened[1], Err(CryptoError::Signature));
        assert!(matches!(opened[3], Err(CryptoError::Invalid(_))));
        for i in [0, 2, 4, 5] {
            assert_eq!(
                opened[i].as_deref().unwrap(),
                format!(r#"{{"text":"hi {i}"}}"#).as_bytes()
            );
        }
        // All good: every one opens through the batch path.
        let good: Vec<Delivery> = envelopes.iter().map(|e| deliver(e, "b1", "a1")).collect();
        let batch: Vec<(&Delivery, &str)> = good.iter().map(|d| (d, alice_pub.as_str())).collect();
        assert!(open_deliveries(&bob, &batch).iter().all(|r| r.is_ok()));
    }

    #[test]
    fn refuses_oversized_content() {
        let mut rng = rand::rng();
        let alice = DeviceKeys::generate(&mut rng);
        let big = vec![b'a'; MAX_CIPHERTEXT];
        let out = Outgoing {
            sender_device_id: "a1",
            conversation_id: "c",
            client_msg_id: "m",
            kind: Kind::Text,
            content: &big,
        };
        assert!(seal_envelope(&mut rng, &alice, &out, &[], EnvelopeOptions::default()).is_err());
    }
}
