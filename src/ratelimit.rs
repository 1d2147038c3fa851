//! Request limits, per instance, in fixed one-minute windows: every `/api` request counts
//! against its client address (middleware, before anything else runs); a request whose token
//! verified also counts against its caller (organisation and `sub`, in the `Actor`
//! extractor). An unauthenticated request never creates a key of its own, so a flood of
//! random `Authorization` headers costs one counter per address, not one per header.
//!
//! Each check is O(1): counters live in shards of a hash map under their own locks, keyed by
//! a randomly seeded 64-bit hash (no key is stored as such, so no token either). A shard
//! forgets its counters when its minute is over, and holds at most a fixed number of keys:
//! memory is bounded whatever arrives. A key that finds its shard full is let through
//! uncounted (and a warning logged once a minute): a flood of fresh addresses must not lock
//! out everyone else, and stopping one is the proxy's or firewall's job.
//!
//! Over a limit: 429 problem+json with `Retry-After`. The client address is the TCP peer,
//! or, when the peer is a configured trusted proxy, the nearest address in `Forwarded` /
//! `X-Forwarded-For` that is not itself a trusted proxy (`client_address`).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderMap;
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError, web};

use crate::error::ApiError;

const SHARDS: usize = 64;

/// Counters in fixed one-minute windows, bounded in memory.
struct Windows {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
    keys_per_shard: usize,
    /// The last minute a full shard was reported, so the warning comes once a minute.
    reported_full: AtomicU64,
}

#[derive(Default)]
struct Shard {
    window: u64,
    counts: HashMap<u64, u32>,
}

impl Windows {
    fn new(max_keys: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::new(),
            keys_per_shard: max_keys.div_ceil(SHARDS).max(1),
            reported_full: AtomicU64::new(u64::MAX),
        }
    }

    /// Counts one request of `key`; `Some(seconds)` to wait when it is over `limit`.
    fn count(&self, key: impl Hash, limit: u32, now_secs: u64) -> Option<u64> {
        if limit == 0 {
            return None;
        }
        let window = now_secs / 60;
        let hash = self.hasher.hash_one(key);
        let shard = self.shards.get(hash as usize % SHARDS)?;
        let mut shard = shard.lock().ok()?;
        if shard.window != window {
            // Clearing keeps the allocation: the next minute reuses it.
            shard.counts.clear();
            shard.window = window;
        }
        let full = shard.counts.len() >= self.keys_per_shard;
        let count = match shard.counts.get_mut(&hash) {
            Some(count) => {
                *count = count.saturating_add(1);
                *count
            }
            None if full => {
                drop(shard);
                if self.reported_full.swap(window, Ordering::Relaxed) != window {
                    tracing::warn!("rate limiter table full: new clients are not counted until the minute ends");
                }
                return None;
            }
            None => {
                shard.counts.insert(hash, 1);
                1
            }
        };
        (count > limit).then(|| 60 - now_secs % 60)
    }

    #[cfg(test)]
    fn keys(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|s| s.counts.len()).unwrap_or(0))
            .sum()
    }
}

/// Networks whose requests carry the client's address in a forwarding header.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Parses addresses and CIDR networks (`10.0.0.0/8`, `::1`, `fd00::/8`).
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut networks = Vec::new();
        for entry in entries {
            let (address, prefix) = match entry.split_once('/') {
                Some((address, prefix)) => (address, Some(prefix)),
                None => (entry.as_str(), None),
            };
            let address: IpAddr = address
                .trim()
                .parse()
                .map_err(|_| format!("`{entry}` is not an IP address or CIDR network"))?;
            let max = if address.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                None => max,
                Some(text) => text
                    .trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= max)
                    .ok_or_else(|| format!("`{entry}`: the prefix must be 0 to {max}"))?,
            };
            networks.push((address, prefix));
        }
        Ok(Self(networks))
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.0
            .iter()
            .any(|(network, prefix)| in_network(address, *network, *prefix))
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) as the IPv4 address they are.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(address),
        v4 => v4,
    }
}

fn in_network(address: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (address, canonical(network)) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The addresses a forwarding header lists, nearest hop last: RFC 7239 `Forwarded: for=`
/// when present, else `X-Forwarded-For`. Unparseable entries (`unknown`, obfuscated
/// identifiers) end the list there: nothing before them can be trusted.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<&str> = headers.get_all("forwarded").filter_map(|v| v.to_str().ok()).collect();
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|v| v.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (name, value) = pair.split_once('=')?;
                    name.trim().eq_ignore_ascii_case("for").then(|| parse_node(value))
                })
            })
            .collect();
    }
    headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(parse_node)
        .collect()
}

/// `192.0.2.1`, `"192.0.2.1:4711"`, `"[2001:db8::1]:4711"`, `2001:db8::1`.
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Ok(address) = text.parse::<IpAddr>() {
        return Some(address);
    }
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    text.rsplit_once(':')?.0.parse().ok()
}

/// The client's address: the TCP peer, unless the peer is a trusted proxy; then the nearest
/// forwarded address that is not a trusted proxy itself.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let mut client = canonical(peer);
    if !trusted.contains(client) {
        return client;
    }
    for hop in forwarded_chain(headers).into_iter().rev() {
        match hop {
            Some(address) => {
                client = canonical(address);
                if !trusted.contains(client) {
                    break;
                }
            }
            None => break,
        }
    }
    client
}

/// What an address counts as: IPv4 addresses one by one, IPv6 by /64, the block one
/// subscriber usually holds whole.
pub(crate) fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
    }
}

pub struct RateLimiter {
    per_token: u32,
    per_address: u32,
    addresses: Windows,
    callers: Windows,
    trusted: TrustedProxies,
}

/// Keys kept per table at most (about 16 bytes each).
const MAX_KEYS: usize = 200_000;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl RateLimiter {
    pub fn new(per_token: u32, per_address: u32, trusted: TrustedProxies) -> Self {
        Self::with_capacity(per_token, per_address, trusted, MAX_KEYS)
    }

    fn with_capacity(per_token: u32, per_address: u32, trusted: TrustedProxies, max_keys: usize) -> Self {
        Self {
            per_token,
            per_address,
            addresses: Windows::new(max_keys),
            callers: Windows::new(max_keys),
            trusted,
        }
    }

    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.trusted
    }

    /// Counts a request of a signed-in caller; 429 over the per-token limit.
    pub fn check_caller(&self, org: &str, sub: &str) -> Result<(), ApiError> {
        match self.callers.count((org, sub), self.per_token, now_secs()) {
            Some(retry_after) => Err(ApiError::TooManyRequests { retry_after }),
            None => Ok(()),
        }
    }

    fn check_address(&self, address: IpAddr) -> Result<(), ApiError> {
        match self.addresses.count(address_key(address), self.per_address, now_secs()) {
            Some(retry_after) => Err(ApiError::TooManyRequests { retry_after }),
            None => Ok(()),
        }
    }
}

/// Applies the per-address limit to `/api` requests.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let limiter = req.app_data::<web::Data<RateLimiter>>().cloned();
    if let Some(limiter) = limiter
        && req.path().starts_with("/api/")
        && let Some(peer) = req.peer_addr()
    {
        let address = client_address(peer.ip(), req.headers(), &limiter.trusted);
        if let Err(error) = limiter.check_address(address) {
            let response = error.error_response();
            return Ok(req.into_response(response));
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn counts_per_key_and_window() {
        let windows = Windows::new(1000);
        assert_eq!(windows.count("a", 2, 120), None);
        assert_eq!(windows.count("a", 2, 121), None);
        assert_eq!(windows.count("a", 2, 150), Some(30));
        assert_eq!(windows.count("b", 2, 150), None, "other keys are unaffected");
        assert_eq!(windows.count("a", 2, 180), None, "a new minute");
        assert_eq!(windows.count("c", 0, 180), None, "0 = no limit");
    }

    #[test]
    fn memory_is_bounded_and_a_flood_of_new_keys_locks_nobody_out() {
        let windows = Windows::new(640);
        windows.count("regular", 3, 0);
        for n in 0..100_000 {
            windows.count(n, 3, 1);
        }
        assert!(windows.keys() <= 640, "{} keys kept", windows.keys());
        // Known keys are still counted and limited...
        windows.count("regular", 3, 2);
        windows.count("regular", 3, 2);
        assert!(windows.count("regular", 3, 2).is_some());
        // ...and in a new minute every key starts from nothing (each shard forgets its
        // counters the first time it is touched in the new minute).
        for _ in 0..3 {
            assert_eq!(windows.count("regular", 3, 61), None);
        }
        assert!(windows.count("regular", 3, 61).is_some());
        assert!(windows.keys() <= 640);
    }

    #[test]
    fn unauthenticated_floods_count_by_address_only() {
        let limiter = RateLimiter::with_capacity(5, 3, TrustedProxies::default(), 1000);
        let flood = ip("198.51.100.7");
        for _ in 0..3 {
            assert!(limiter.check_address(flood).is_ok());
        }
        assert!(matches!(
            limiter.check_address(flood),
            Err(ApiError::TooManyRequests { retry_after: 1..=60 })
        ));
        assert!(limiter.check_address(ip("198.51.100.8")).is_ok(), "others go on");
        assert_eq!(limiter.callers.keys(), 0, "no key per token");
        // One IPv6 subscriber's /64 counts as one.
        for n in 0..3 {
            assert!(limiter.check_address(ip(&format!("2001:db8:1:2::{n}"))).is_ok());
        }
        assert!(limiter.check_address(ip("2001:db8:1:2::ff")).is_err());
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let trusted = TrustedProxies::parse(&["10.0.0.0/8".into(), "::1".into()]).unwrap();
        let xff = headers(&[("x-forwarded-for", "203.0.113.9, 10.1.2.3")]);
        // From the proxy: the nearest untrusted hop.
        assert_eq!(client_address(ip("10.0.0.1"), &xff, &trusted), ip("203.0.113.9"));
        // From anyone else the header is ignored: it could say anything.
        assert_eq!(client_address(ip("198.51.100.1"), &xff, &trusted), ip("198.51.100.1"));
        // A spoofed entry before the real client does not help the client.
        let spoofed = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.9")]);
        assert_eq!(client_address(ip("10.0.0.1"), &spoofed, &trusted), ip("203.0.113.9"));
        let forwarded = headers(&[("forwarded", "for=192.0.2.60;proto=https, for=\"[2001:db8::7]:4711\"")]);
        assert_eq!(client_address(ip("::1"), &forwarded, &trusted), ip("2001:db8::7"));
        assert_eq!(
            client_address(ip("::ffff:10.0.0.5"), &xff, &trusted),
            ip("203.0.113.9"),
            "IPv4-mapped peers are IPv4"
        );
        let unknown = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(client_address(ip("10.0.0.1"), &unknown, &trusted), ip("10.0.0.1"));
        assert_eq!(
            client_address(ip("10.0.0.1"), &HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn trusted_proxies_parse_and_name_bad_entries() {
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["proxy.example".into()]).is_err());
        let all_v4 = TrustedProxies::parse(&["0.0.0.0/0".into()]).unwrap();
        assert!(all_v4.contains(ip("8.8.8.8")));
        assert!(!all_v4.contains(ip("2001:db8::1")));
    }
}
