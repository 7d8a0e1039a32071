//! The sign-in rate limit: a token bucket per source address.
//!
//! Every sign-in attempt, good or bad, takes a token; a source that runs out is told
//! how many seconds to wait. This slows password guessing from one place; the
//! per-account lockout stops it from many.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;

pub struct LoginLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl LoginLimiter {
    pub fn new(per_minute: u32) -> LoginLimiter {
        let n = NonZeroU32::new(per_minute.max(1)).expect("non-zero");
        LoginLimiter {
            limiter: RateLimiter::keyed(Quota::per_minute(n)),
        }
    }

    /// Take one attempt for `ip`; `Err(seconds)` says how long to wait.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        self.limiter.check_key(&ip).map_err(|not_until| {
            not_until
                .wait_time_from(DefaultClock::default().now())
                .as_secs()
                .max(1)
        })
    }

    /// Drop state of sources that are idle again.
    pub fn sweep(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_runs_out_and_another_does_not() {
        let l = LoginLimiter::new(3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check(a).is_ok());
        }
        let wait = l.check(a).unwrap_err();
        assert!((1..=60).contains(&wait));
        assert!(l.check(b).is_ok());
    }
}
