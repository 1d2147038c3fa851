//! Webhooks as the Standard Webhooks specification has them (standardwebhooks.com): which
//! events exist and who hears each, the thin payload, the signature, and which endpoints
//! may be called at all. Pure: the outbox, the HTTP client and the clock are elsewhere
//! (`db::webhooks`, `notify::webhooks`).
//!
//! A webhook tells a partner's system that something happened and where to fetch it; it
//! never carries personal data or case facts. The partner then pulls what it may see through
//! the API or the FHIR view, under the same access rules as everyone (docs/integration.md §2).

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What happened. The text is the `type` of the payload and what subscriptions list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// A referral was handed over: to the receiver.
    ReferralReceived,
    ReferralAcknowledged,
    ReferralAccepted,
    ReferralDeclined,
    ReferralInCare,
    ReferralCompleted,
    ReferralWithdrawn,
    /// A consent that an open referral relied on was withdrawn.
    ConsentWithdrawn,
    /// A handover step is past its deadline.
    StepOverdue,
    /// A caseworker asked the police to join a three-way conversation.
    ThreeWayRequested,
}

impl EventType {
    pub const ALL: [EventType; 10] = [
        EventType::ReferralReceived,
        EventType::ReferralAcknowledged,
        EventType::ReferralAccepted,
        EventType::ReferralDeclined,
        EventType::ReferralInCare,
        EventType::ReferralCompleted,
        EventType::ReferralWithdrawn,
        EventType::ConsentWithdrawn,
        EventType::StepOverdue,
        EventType::ThreeWayRequested,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::ReferralReceived => "referral.received",
            EventType::ReferralAcknowledged => "referral.acknowledged",
            EventType::ReferralAccepted => "referral.accepted",
            EventType::ReferralDeclined => "referral.declined",
            EventType::ReferralInCare => "referral.in_care",
            EventType::ReferralCompleted => "referral.completed",
            EventType::ReferralWithdrawn => "referral.withdrawn",
            EventType::ConsentWithdrawn => "referral.consent_withdrawn",
            EventType::StepOverdue => "referral.step_overdue",
            EventType::ThreeWayRequested => "three_way_conversation.requested",
        }
    }

    pub fn parse(text: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|e| e.as_str() == text)
    }
}

crate::domain::text::text_enum! {
    /// Whether a subscription gets deliveries.
    pub enum SubscriptionStatus {
        Active = "active",
        /// By its admin: deliveries wait, and go out on resume.
        Paused = "paused",
        /// By the service: the endpoint answered 410, or kept failing. Nothing is queued for
        /// it until its admin resumes it.
        Disabled = "disabled",
        /// Deleted by its admin: the row stays as a tombstone without endpoint or secret, so
        /// deleting twice answers the same.
        Deleted = "deleted",
    }
}

crate::domain::text::text_enum! {
    /// Why a subscription was disabled.
    pub enum DisabledReason {
        /// The endpoint answered 410 Gone.
        Gone = "gone",
        /// Every attempt failed for longer than `webhooks.disable_after`.
        Failing = "failing",
    }
}

crate::domain::text::text_enum! {
    /// Where one delivery is.
    pub enum DeliveryState {
        Pending = "pending",
        Delivered = "delivered",
        /// Given up: its subscription was disabled or deleted meanwhile.
        Failed = "failed",
    }
}

/// What an attempt's answer means for the delivery and its subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: delivered.
    Delivered,
    /// 410 Gone: the receiver asks never to be called again; disable the subscription.
    Gone,
    /// Anything else, or no answer: try again later.
    Retry,
}

/// How an answer is read (Standard Webhooks: any 2xx is success, 410 disables; redirects
/// are not followed, so a 3xx is a failure).
pub fn verdict(status: Option<u16>) -> Verdict {
    match status {
        Some(200..=299) => Verdict::Delivered,
        Some(410) => Verdict::Gone,
        _ => Verdict::Retry,
    }
}

/// Whether a subscription failing since `failing_since` is disabled now.
pub fn failing_too_long(
    failing_since: Option<chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
    disable_after: chrono::Duration,
) -> bool {
    failing_since.is_some_and(|since| now - since >= disable_after)
}

/// The parties of a referral, as the events about it need them.
#[derive(Debug, Clone, Copy)]
pub struct ReferralParties<'a> {
    pub from: &'a str,
    pub to: &'a str,
    /// Handed over at some point: a draft is the sender's alone, so only the sender hears of it.
    pub handed_over: bool,
}

/// The event a referral transition raises, and the organisations that hear it: both parties
/// of a handed-over referral (each may read it), the receiver only for its arrival. A draft
/// and its withdrawal stay with the sender, whose people did it: no event.
pub fn referral_event<'a>(action: &str, parties: ReferralParties<'a>) -> Option<(EventType, Vec<&'a str>)> {
    use EventType as E;
    let event = match action {
        "submit" => return Some((E::ReferralReceived, vec![parties.to])),
        "acknowledge" => E::ReferralAcknowledged,
        "accept" => E::ReferralAccepted,
        "decline" => E::ReferralDeclined,
        "start_care" => E::ReferralInCare,
        "complete" => E::ReferralCompleted,
        "withdraw" => E::ReferralWithdrawn,
        _ => return None,
    };
    parties.handed_over.then(|| (event, vec![parties.from, parties.to]))
}

/// The body of a delivery: type, timestamp and ids with the links to fetch the rest. Nothing
/// else, ever: no pseudonym, no facts of the case, no organisation's free text.
pub fn payload(event: EventType, at: &str, resource: Resource, api_base: &str) -> String {
    let base = api_base.trim_end_matches('/');
    let data = match resource {
        Resource::Referral(id) => serde_json::json!({
            "referral_id": id,
            "links": {
                "referral": format!("{base}/api/v1/referrals/{id}"),
                "fhir_task": format!("{base}/fhir/Task/{id}"),
            },
        }),
        Resource::Conversation(id) => serde_json::json!({
            "three_way_conversation_id": id,
            "links": { "three_way_conversation": format!("{base}/api/v1/three-way-conversations/{id}") },
        }),
    };
    serde_json::json!({ "type": event.as_str(), "timestamp": at, "data": data }).to_string()
}

/// What an event is about.
#[derive(Debug, Clone, Copy)]
pub enum Resource {
    Referral(uuid::Uuid),
    Conversation(uuid::Uuid),
}

// ---------------------------------------------------------------------------
// Signing (Standard Webhooks, "Signature scheme")
// ---------------------------------------------------------------------------

/// The prefix of a secret as it is shown to an admin.
pub const SECRET_PREFIX: &str = "whsec_";

/// A signing secret as shown once to the admin: `whsec_` and the base64 of the key bytes.
pub fn secret_text(key: &[u8]) -> String {
    format!("{SECRET_PREFIX}{}", BASE64.encode(key))
}

/// The key bytes of a secret in its shown form.
pub fn secret_key(text: &str) -> Option<Vec<u8>> {
    BASE64.decode(text.strip_prefix(SECRET_PREFIX)?).ok()
}

/// `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body` under `key`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    #[allow(clippy::expect_used)] // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header: one signature per secret in force, space-separated, so a
/// receiver holding either secret during a rotation's overlap verifies the delivery.
pub fn signature_header(keys: &[&[u8]], id: &str, timestamp: i64, body: &str) -> String {
    keys.iter()
        .map(|key| sign(key, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------
// Where deliveries may go
// ---------------------------------------------------------------------------

/// An address range of configuration, `10.1.0.0/16`, `::1/128` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressRange {
    network: IpAddr,
    prefix: u8,
}

impl AddressRange {
    pub fn parse(text: &str) -> Option<Self> {
        let (address, prefix) = match text.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(bits);
        (prefix <= bits).then_some(Self {
            network: address,
            prefix,
        })
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        fn masked(bits: u128, prefix: u8, width: u8) -> u128 {
            if prefix == 0 { 0 } else { bits >> (width - prefix) }
        }
        match (self.network, canonical(address)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                masked(u32::from(n).into(), self.prefix, 32) == masked(u32::from(a).into(), self.prefix, 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                masked(u128::from(n), self.prefix, 128) == masked(u128::from(a), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// An IPv4 address written as IPv6 (`::ffff:10.0.0.1`) is that IPv4 address.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(address),
        v4 => v4,
    }
}

/// Whether an address is on the public internet: not loopback, private, link-local, shared
/// (CGNAT), unspecified, multicast, broadcast, documentation or otherwise reserved. A
/// delivery to anything else could reach the service's own network (SSRF).
pub fn is_public(address: IpAddr) -> bool {
    match canonical(address) {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8
                || first == 0x0064 && v6.segments()[1] == 0xff9b)
        }
    }
}

/// Whether a delivery may connect to `address`: a public one, or one the configuration
/// lists (`webhooks.allowed_addresses`, e.g. a partner's private link; tests list loopback).
pub fn may_connect(address: IpAddr, allowed: &[AddressRange]) -> bool {
    is_public(address) || allowed.iter().any(|range| range.contains(address))
}

/// Why an endpoint URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointProblem {
    #[error("must be an absolute URL")]
    NotAUrl,
    #[error("must use https (plain http only to an address listed in webhooks.allowed_addresses)")]
    NotHttps,
    #[error("must not carry a user name or password; the signature authenticates the sender")]
    Credentials,
    #[error("must not point at a private, loopback or link-local address")]
    PrivateAddress,
    #[error("must be at most 2000 characters")]
    TooLong,
}

/// An endpoint a subscription may name. A host name is checked again after each DNS
/// resolution, when delivering (`notify::webhooks`), since its addresses can change.
pub fn check_endpoint(text: &str, allowed: &[AddressRange]) -> Result<url::Url, EndpointProblem> {
    if text.len() > 2000 {
        return Err(EndpointProblem::TooLong);
    }
    let url = url::Url::parse(text).map_err(|_| EndpointProblem::NotAUrl)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(EndpointProblem::Credentials);
    }
    let literal = match url.host() {
        Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        Some(url::Host::Domain(_)) => None,
        None => return Err(EndpointProblem::NotAUrl),
    };
    let listed = literal.is_some_and(|a| allowed.iter().any(|range| range.contains(a)));
    match url.scheme() {
        "https" => {}
        "http" if listed => {}
        _ => return Err(EndpointProblem::NotHttps),
    }
    if let Some(address) = literal
        && !may_connect(address, allowed)
    {
        return Err(EndpointProblem::PrivateAddress);
    }
    Ok(url)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_specifications_own_example() {
        // The example of the Standard Webhooks specification ("Verifying webhook signatures").
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let header = signature_header(&[&key, b"another"], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert!(header.starts_with("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,"));
        assert_eq!(secret_key(&secret_text(b"0123")).unwrap(), b"0123");
        assert_eq!(secret_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), None);
    }

    #[test]
    fn each_event_goes_to_whoever_may_read_the_referral() {
        let handed_over = ReferralParties {
            from: "fier",
            to: "csg",
            handed_over: true,
        };
        assert_eq!(
            referral_event("submit", handed_over),
            Some((EventType::ReferralReceived, vec!["csg"]))
        );
        for (action, event) in [
            ("acknowledge", EventType::ReferralAcknowledged),
            ("accept", EventType::ReferralAccepted),
            ("decline", EventType::ReferralDeclined),
            ("start_care", EventType::ReferralInCare),
            ("complete", EventType::ReferralCompleted),
            ("withdraw", EventType::ReferralWithdrawn),
        ] {
            assert_eq!(referral_event(action, handed_over), Some((event, vec!["fier", "csg"])));
        }
        let draft = ReferralParties {
            handed_over: false,
            ..handed_over
        };
        assert_eq!(referral_event("withdraw", draft), None);
        assert_eq!(referral_event("assign", handed_over), None);
        for event in EventType::ALL {
            assert_eq!(EventType::parse(event.as_str()), Some(event));
        }
    }

    #[test]
    fn answers_and_failing_endpoints() {
        assert_eq!(verdict(Some(200)), Verdict::Delivered);
        assert_eq!(verdict(Some(204)), Verdict::Delivered);
        assert_eq!(verdict(Some(410)), Verdict::Gone);
        for other in [Some(301), Some(400), Some(404), Some(500), Some(503), None] {
            assert_eq!(verdict(other), Verdict::Retry, "{other:?}");
        }
        let now = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH + chrono::Duration::days(10);
        let day = chrono::Duration::days(1);
        assert!(!failing_too_long(None, now, day));
        assert!(!failing_too_long(Some(now - chrono::Duration::hours(23)), now, day));
        assert!(failing_too_long(Some(now - day), now, day));
    }

    #[test]
    fn the_payload_holds_ids_and_links_only() {
        let id = uuid::Uuid::nil();
        let body = payload(
            EventType::ReferralAccepted,
            "2026-12-03T10:00:00Z",
            Resource::Referral(id),
            "https://nrm.example/",
        );
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "type": "referral.accepted",
                "timestamp": "2026-12-03T10:00:00Z",
                "data": {
                    "referral_id": id,
                    "links": {
                        "referral": format!("https://nrm.example/api/v1/referrals/{id}"),
                        "fhir_task": format!("https://nrm.example/fhir/Task/{id}"),
                    },
                },
            })
        );
    }

    #[test]
    fn private_addresses_are_refused_unless_listed() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "2a00:1450:4001::200e", "8.8.8.8"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        let loopback = [AddressRange::parse("127.0.0.0/8").unwrap()];
        assert!(may_connect("127.0.0.2".parse().unwrap(), &loopback));
        assert!(!may_connect("10.0.0.1".parse().unwrap(), &loopback));
        let one = AddressRange::parse("10.1.2.3").unwrap();
        assert!(one.contains("10.1.2.3".parse().unwrap()) && !one.contains("10.1.2.4".parse().unwrap()));
        assert!(
            AddressRange::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert_eq!(AddressRange::parse("10.0.0.0/33"), None);
        assert_eq!(AddressRange::parse("example.org"), None);
    }

    #[test]
    fn endpoints_must_be_https_public_and_without_credentials() {
        let none: [AddressRange; 0] = [];
        assert!(check_endpoint("https://hooks.csg.example/nrm", &none).is_ok());
        let cases = [
            ("http://hooks.csg.example/nrm", EndpointProblem::NotHttps),
            ("ftp://hooks.csg.example/", EndpointProblem::NotHttps),
            ("https://user:pw@hooks.csg.example/", EndpointProblem::Credentials),
            ("https://10.0.0.5/hook", EndpointProblem::PrivateAddress),
            ("https://[::1]/hook", EndpointProblem::PrivateAddress),
            (
                "https://169.254.169.254/latest/meta-data",
                EndpointProblem::PrivateAddress,
            ),
            ("http://127.0.0.1:8080/hook", EndpointProblem::NotHttps),
            ("hooks.csg.example", EndpointProblem::NotAUrl),
        ];
        for (url, problem) in cases {
            assert_eq!(check_endpoint(url, &none), Err(problem), "{url}");
        }
        let loopback = [AddressRange::parse("127.0.0.1").unwrap()];
        assert!(check_endpoint("http://127.0.0.1:8080/hook", &loopback).is_ok());
        let long = format!("https://hooks.example/{}", "a".repeat(2000));
        assert_eq!(check_endpoint(&long, &none), Err(EndpointProblem::TooLong));
    }
}
