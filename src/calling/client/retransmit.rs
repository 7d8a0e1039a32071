//! When a request is sent again (RFC 8489 §6.2.1): over UDP a request goes out, and if no
//! response has come after the retransmission timeout (RTO, 500 ms by default) it goes out
//! again, each wait twice the one before, up to a number of transmissions; the last wait is
//! as long as its doubling says (with 5 transmissions: 0.5 + 1 + 2 + 4 + 8 s). Over TCP and
//! TLS a request is sent once and the whole of that time is spent waiting for its answer.

use std::time::Duration;

/// A retransmission schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retransmit {
    /// The first wait (RFC 8489's RTO).
    pub rto: Duration,
    /// How many times a request goes out over UDP (at least 1).
    pub transmissions: u32,
}

impl Default for Retransmit {
    fn default() -> Self {
        Retransmit {
            rto: Duration::from_millis(500),
            transmissions: 5,
        }
    }
}

impl Retransmit {
    /// The wait after each transmission over UDP: `rto`, `2·rto`, `4·rto`, …
    pub fn waits(&self) -> impl Iterator<Item = Duration> + use<> {
        let rto = self.rto;
        (0..self.transmissions.max(1)).map(move |i| rto.saturating_mul(1 << i.min(30)))
    }

    /// The time a request may take in all: the sum of the waits (over TCP and TLS, the one
    /// wait after the only transmission).
    pub fn total(&self) -> Duration {
        self.waits().fold(Duration::ZERO, Duration::saturating_add)
    }

    /// The waits for a transport: the doubling schedule over UDP, one wait of
    /// [`Self::total`] over a reliable stream.
    pub(crate) fn schedule(&self, reliable: bool) -> Vec<Duration> {
        if reliable {
            vec![self.total()]
        } else {
            self.waits().collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_from_the_rto() {
        let r = Retransmit::default();
        let ms: Vec<u128> = r.waits().map(|d| d.as_millis()).collect();
        assert_eq!(ms, vec![500, 1000, 2000, 4000, 8000]);
        assert_eq!(r.total(), Duration::from_millis(15_500));
        assert_eq!(r.schedule(true), vec![Duration::from_millis(15_500)]);
        assert_eq!(r.schedule(false).len(), 5);
    }

    #[test]
    fn at_least_one_transmission_and_no_overflow() {
        let r = Retransmit {
            rto: Duration::from_millis(100),
            transmissions: 0,
        };
        assert_eq!(r.waits().count(), 1);
        let huge = Retransmit {
            rto: Duration::from_secs(u64::MAX / 2),
            transmissions: 64,
        };
        assert_eq!(huge.waits().count(), 64);
        assert_eq!(huge.total(), Duration::MAX);
    }
}
