//! What `nrm` tells people by e-mail, and when it retries.
//!
//! A mail names the referral by its reference, the step, the organisations and a link into
//! the service. It never carries a pseudonym, identifying detail, free-text note or form of
//! exploitation: `MailFacts` has no field that could hold one, so no template can leak one.
//! Dutch first, English below. Pure: no clock, no randomness (jitter comes in as a number).

use chrono::Duration;

crate::domain::text::text_enum! {
    /// Why a notification is sent.
    pub enum NotificationKind {
        /// A referral was submitted: to the receiver's intake.
        ReferralSubmitted = "referral_submitted",
        /// Closed loop to the sender.
        ReferralAcknowledged = "referral_acknowledged",
        ReferralAccepted = "referral_accepted",
        ReferralDeclined = "referral_declined",
        ReferralCompleted = "referral_completed",
        /// The system withdrew a referral, or the sender did: to the receiver.
        ReferralWithdrawn = "referral_withdrawn",
        /// A step is past its deadline: to the receiver and the focal point.
        StepOverdue = "step_overdue",
        /// Consent was withdrawn: to organisations holding open referrals on it.
        ConsentWithdrawn = "consent_withdrawn",
        /// A case's personal data was erased: to organisations that held referrals.
        CaseErased = "case_erased",
        /// A webhook endpoint was disabled (410, or failing too long): to the subscription's
        /// contact address.
        WebhookDisabled = "webhook_disabled",
    }
}

crate::domain::text::text_enum! {
    /// Where a notification is in its delivery.
    pub enum DeliveryStatus {
        Pending = "pending",
        Sent = "sent",
        /// Gave up after the maximum number of attempts; an admin can re-queue it.
        Dead = "dead",
    }
}

/// Everything a mail may say. Deliberately no case facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailFacts {
    pub kind: NotificationKind,
    /// The referral's short reference, e.g. `NRM-1F3A9C2B`.
    pub reference: String,
    pub from_organisation: String,
    pub to_organisation: String,
    /// The step concerned (`acknowledge`, `decide`, `start_care`) for overdue mails.
    pub step: Option<String>,
    /// A link into the service, built from `notifications.public_base_url`.
    pub link: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub subject: String,
    pub body: String,
}

/// The short reference of a referral or case id: the last eight hex digits, upper case.
pub fn reference(id: &uuid::Uuid) -> String {
    let hex = id.simple().to_string();
    format!("NRM-{}", hex[hex.len() - 8..].to_uppercase())
}

fn step_nl(step: Option<&str>) -> &'static str {
    match step {
        Some("acknowledge") => "ontvangst bevestigen",
        Some("decide") => "besluiten (accepteren of afwijzen)",
        Some("start_care") => "zorg starten",
        _ => "volgende stap",
    }
}

fn step_en(step: Option<&str>) -> &'static str {
    match step {
        Some("acknowledge") => "acknowledge receipt",
        Some("decide") => "decide (accept or decline)",
        Some("start_care") => "start care",
        _ => "next step",
    }
}

pub fn render(f: &MailFacts) -> Mail {
    use NotificationKind as K;
    let (nl_title, en_title, nl_line, en_line) = match f.kind {
        K::ReferralSubmitted => (
            "Nieuwe verwijzing",
            "New referral",
            format!(
                "{} heeft een verwijzing naar {} ingediend. Bevestig de ontvangst en besluit over de overdracht.",
                f.from_organisation, f.to_organisation
            ),
            format!(
                "{} submitted a referral to {}. Please acknowledge it and decide on the handover.",
                f.from_organisation, f.to_organisation
            ),
        ),
        K::ReferralAcknowledged => (
            "Verwijzing ontvangen",
            "Referral acknowledged",
            format!("{} heeft de ontvangst van uw verwijzing bevestigd.", f.to_organisation),
            format!("{} acknowledged your referral.", f.to_organisation),
        ),
        K::ReferralAccepted => (
            "Verwijzing geaccepteerd",
            "Referral accepted",
            format!("{} heeft uw verwijzing geaccepteerd.", f.to_organisation),
            format!("{} accepted your referral.", f.to_organisation),
        ),
        K::ReferralDeclined => (
            "Verwijzing afgewezen",
            "Referral declined",
            format!(
                "{} heeft uw verwijzing afgewezen. Bekijk de reden en de volgende suggesties in nrm.",
                f.to_organisation
            ),
            format!(
                "{} declined your referral. See the reason and the next suggestions in nrm.",
                f.to_organisation
            ),
        ),
        K::ReferralCompleted => (
            "Verwijzing afgerond",
            "Referral completed",
            format!(
                "{} heeft de ondersteuning afgerond en de uitkomst teruggemeld.",
                f.to_organisation
            ),
            format!("{} completed the support and reported the outcome.", f.to_organisation),
        ),
        K::ReferralWithdrawn => (
            "Verwijzing ingetrokken",
            "Referral withdrawn",
            format!(
                "De verwijzing van {} naar {} is ingetrokken.",
                f.from_organisation, f.to_organisation
            ),
            format!(
                "The referral from {} to {} was withdrawn.",
                f.from_organisation, f.to_organisation
            ),
        ),
        K::StepOverdue => (
            "Termijn verstreken",
            "Step overdue",
            format!(
                "De stap '{}' van de verwijzing van {} naar {} is niet binnen de termijn gezet. Het landelijk coördinatiepunt is geïnformeerd.",
                step_nl(f.step.as_deref()),
                f.from_organisation,
                f.to_organisation
            ),
            format!(
                "The step '{}' of the referral from {} to {} is past its deadline. The national focal point has been informed.",
                step_en(f.step.as_deref()),
                f.from_organisation,
                f.to_organisation
            ),
        ),
        K::ConsentWithdrawn => (
            "Toestemming ingetrokken",
            "Consent withdrawn",
            format!(
                "De toestemming voor de verwijzing van {} naar {} is ingetrokken. Open verwijzingen die daarop rusten zijn ingetrokken.",
                f.from_organisation, f.to_organisation
            ),
            format!(
                "Consent for the referral from {} to {} was withdrawn. Open referrals relying on it were withdrawn.",
                f.from_organisation, f.to_organisation
            ),
        ),
        K::CaseErased => (
            "Gegevens gewist",
            "Personal data erased",
            format!(
                "{} heeft de persoonsgegevens van een casus gewist waarvoor u een verwijzing had. Wis ook uw eigen kopieën waar de wet dat vraagt.",
                f.from_organisation
            ),
            format!(
                "{} erased the personal data of a case you held a referral for. Erase your own copies where the law requires it.",
                f.from_organisation
            ),
        ),
        K::WebhookDisabled => {
            let (nl_why, en_why) = match f.step.as_deref() {
                Some("gone") => ("antwoordde 410 Gone", "answered 410 Gone"),
                _ => (
                    "faalde langer dan de toegestane tijd",
                    "kept failing for longer than allowed",
                ),
            };
            (
                "Webhook uitgeschakeld",
                "Webhook disabled",
                format!(
                    "Het webhook-adres van {} op {} {nl_why} en is uitgeschakeld. Er worden geen meldingen meer naartoe gestuurd tot een beheerder het weer aanzet.",
                    f.from_organisation, f.to_organisation
                ),
                format!(
                    "The webhook endpoint of {} at {} {en_why} and was disabled. Nothing is sent to it until an admin resumes it.",
                    f.from_organisation, f.to_organisation
                ),
            )
        }
    };
    // ASCII subjects travel through every mail system unencoded.
    let subject = format!("[nrm] {nl_title} / {en_title} - {}", f.reference);
    let body = format!(
        "{nl_line}\n\nReferentie: {reference}\nBekijk in nrm: {link}\n\n\
         Deze e-mail bevat bewust geen persoonsgegevens. Log in om de details te zien.\n\n\
         -- English --\n\n{en_line}\n\nReference: {reference}\nView in nrm: {link}\n\n\
         This e-mail deliberately contains no personal data. Sign in to see the details.\n",
        reference = f.reference,
        link = f.link,
    );
    Mail { subject, body }
}

/// Delay before attempt `attempt + 1` (after `attempt` failures, counting from 1):
/// exponential from `base`, capped at `max`, with up to 25 % jitter subtracted so that
/// many failed messages do not retry in lockstep. `jitter` is in [0, 1).
pub fn retry_delay(attempt: u32, base: Duration, max: Duration, jitter: f64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(30);
    let raw = base.num_milliseconds().saturating_mul(1_i64 << exponent);
    let capped = raw.min(max.num_milliseconds()).max(0);
    let jitter = jitter.clamp(0.0, 0.999);
    Duration::milliseconds(capped - (capped as f64 * 0.25 * jitter) as i64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn facts(kind: NotificationKind) -> MailFacts {
        MailFacts {
            kind,
            reference: "NRM-1F3A9C2B".into(),
            from_organisation: "Fier".into(),
            to_organisation: "Centrum Seksueel Geweld".into(),
            step: Some("acknowledge".into()),
            link: "https://nrm.example/referrals/x".into(),
        }
    }

    #[test]
    fn every_mail_is_dutch_first_with_reference_and_link() {
        for kind in NotificationKind::ALL {
            let mail = render(&facts(kind));
            assert!(mail.subject.contains("NRM-1F3A9C2B"), "{kind:?}");
            let nl = mail.body.find("Referentie").unwrap();
            let en = mail.body.find("-- English --").unwrap();
            assert!(nl < en, "{kind:?}: Dutch comes first");
            assert_eq!(mail.body.matches("https://nrm.example/referrals/x").count(), 2);
        }
    }

    #[test]
    fn reference_is_the_ids_tail() {
        let id = uuid::Uuid::parse_str("01900000-0000-7000-8000-00001f3a9c2b").unwrap();
        assert_eq!(reference(&id), "NRM-1F3A9C2B");
    }

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_a_cap() {
        let base = Duration::seconds(30);
        let max = Duration::hours(1);
        assert_eq!(retry_delay(1, base, max, 0.0), Duration::seconds(30));
        assert_eq!(retry_delay(2, base, max, 0.0), Duration::seconds(60));
        assert_eq!(retry_delay(5, base, max, 0.0), Duration::seconds(480));
        assert_eq!(retry_delay(20, base, max, 0.0), Duration::hours(1));
        assert_eq!(retry_delay(1, base, max, 0.5), Duration::milliseconds(26_250));
        assert!(retry_delay(60, base, max, 0.999) > Duration::minutes(45));
    }
}
