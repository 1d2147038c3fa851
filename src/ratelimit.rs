//! Per-token and per-address request limits (fixed one-minute windows, per instance).
//! Over the limit: 429 problem+json with `Retry-After`. Tokens are keyed by a hash, never
//! kept as such.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError, web};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

pub struct RateLimiter {
    per_token: u32,
    per_address: u32,
    windows: Mutex<HashMap<String, (u64, u32)>>,
}

impl RateLimiter {
    pub fn new(per_token: u32, per_address: u32) -> Self {
        Self {
            per_token,
            per_address,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request; `Some(seconds)` to wait when a limit is exceeded.
    fn check(&self, keys: &[(String, u32)], now_secs: u64) -> Option<u64> {
        let window = now_secs / 60;
        let mut windows = self.windows.lock().ok()?;
        if windows.len() > 100_000 {
            windows.retain(|_, (w, _)| *w == window);
        }
        let mut exceeded = false;
        for (key, limit) in keys {
            if *limit == 0 {
                continue;
            }
            let entry = windows.entry(key.clone()).or_insert((window, 0));
            if entry.0 != window {
                *entry = (window, 0);
            }
            entry.1 += 1;
            exceeded |= entry.1 > *limit;
        }
        exceeded.then(|| 60 - now_secs % 60)
    }
}

/// Applies the limits to `/api` requests.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let limiter = req.app_data::<web::Data<RateLimiter>>().cloned();
    if let Some(limiter) = limiter
        && req.path().starts_with("/api/")
    {
        let mut keys = Vec::new();
        if let Some(token) = req.headers().get(AUTHORIZATION) {
            let digest = Sha256::digest(token.as_bytes());
            keys.push((format!("t:{:x}", digest), limiter.per_token));
        }
        if let Some(address) = req.peer_addr() {
            keys.push((format!("a:{}", address.ip()), limiter.per_address));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if let Some(wait) = limiter.check(&keys, now) {
            let error = ApiError::TooManyRequests;
            let mut response = error.error_response();
            if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
                response.headers_mut().insert(RETRY_AFTER, value);
            }
            return Ok(req.into_response(response));
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_key_and_window() {
        let limiter = RateLimiter::new(2, 0);
        let keys = vec![("t:a".to_string(), 2)];
        assert_eq!(limiter.check(&keys, 120), None);
        assert_eq!(limiter.check(&keys, 121), None);
        assert_eq!(limiter.check(&keys, 150), Some(30));
        assert_eq!(
            limiter.check(&[("t:b".to_string(), 2)], 150),
            None,
            "other tokens are unaffected"
        );
        assert_eq!(limiter.check(&keys, 180), None, "a new minute");
        assert_eq!(limiter.check(&[("t:c".to_string(), 0)], 180), None, "0 = no limit");
    }
}
