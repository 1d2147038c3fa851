//! Notifications: who is told what, queued in the transaction of the change (the outbox),
//! delivered by a worker over SMTP, and the deadline watcher that escalates stalled steps.
//!
//! Handlers call `Notifier` inside their write transaction; nothing here sends mail from a
//! request. Mails are rendered by `domain::notification` from ids and organisation names
//! only.

pub mod deadlines;
pub mod worker;

use std::sync::Arc;

pub mod webhooks;

use crate::db::outbox::{self, NewNotification};
use crate::db::referrals::{ReferralRow, ThreeWayRow};
use crate::db::webhooks::{self as webhook_rows, SubscriptionRow};
use crate::db::{AnyConnection, Id, Instant};
use crate::domain::notification::{MailFacts, NotificationKind, reference, render};
use crate::domain::organisation::{Organisation, Registry};
use crate::domain::webhook::{self, EventType, ReferralParties, Resource};

/// What a mail is about: a referral, or a three-way conversation.
struct About<'a> {
    /// The id the mail's reference is made from.
    id: Id,
    from_organisation: &'a str,
    to_organisation: &'a str,
    /// The path of the resource in the API, appended to `public_base_url`.
    path: String,
    referral: Option<Id>,
}

/// Builds and queues notifications. Shared by handlers and background tasks.
#[derive(Clone)]
pub struct Notifier {
    registry: Arc<Registry>,
    public_base_url: String,
}

impl Notifier {
    pub fn new(registry: Arc<Registry>, public_base_url: &str) -> Self {
        Self {
            registry,
            public_base_url: public_base_url.trim_end_matches('/').to_string(),
        }
    }

    fn organisation(&self, slug: &str) -> Option<&Organisation> {
        self.registry.get(slug)
    }

    fn name(&self, slug: &str) -> String {
        self.organisation(slug)
            .map(|o| o.name.clone())
            .unwrap_or_else(|| slug.to_string())
    }

    fn queue(
        &self,
        conn: &mut AnyConnection,
        kind: NotificationKind,
        recipient_slug: &str,
        referral: &ReferralRow,
        step: Option<&str>,
        now: Instant,
    ) -> diesel::QueryResult<()> {
        self.queue_about(conn, kind, recipient_slug, &Self::about_referral(referral), step, now)
    }

    fn queue_about(
        &self,
        conn: &mut AnyConnection,
        kind: NotificationKind,
        recipient_slug: &str,
        about: &About,
        step: Option<&str>,
        now: Instant,
    ) -> diesel::QueryResult<()> {
        match self.message_about(kind, recipient_slug, about, step) {
            Some(message) => outbox::enqueue(conn, &message, now).map(|_| ()),
            None => Ok(()),
        }
    }

    /// The mail about `about` for `recipient_slug`, if the registry knows that organisation.
    fn message_about(
        &self,
        kind: NotificationKind,
        recipient_slug: &str,
        about: &About,
        step: Option<&str>,
    ) -> Option<NewNotification> {
        let recipient = self.organisation(recipient_slug)?;
        let facts = MailFacts {
            kind,
            reference: reference(&about.id.0),
            from_organisation: self.name(about.from_organisation),
            to_organisation: self.name(about.to_organisation),
            step: step.map(str::to_string),
            link: format!("{}{}", self.public_base_url, about.path),
        };
        let mail = render(&facts);
        Some(NewNotification {
            kind,
            recipient: recipient.intake_email.clone(),
            recipient_org: recipient.slug.clone(),
            referral_id: about.referral,
            subject: mail.subject,
            body: mail.body,
        })
    }

    fn about_referral(referral: &ReferralRow) -> About<'_> {
        About {
            id: referral.id,
            from_organisation: &referral.from_organisation,
            to_organisation: &referral.to_organisation,
            // The referral's page: a browser signs in first, then lands on it.
            path: format!("/referrals/{}", referral.id.0),
            referral: Some(referral.id),
        }
    }

    /// After a referral transition: the receiver hears of new and withdrawn handovers, the
    /// sender of every answer (the closed loop).
    pub fn referral_moved(
        &self,
        conn: &mut AnyConnection,
        referral: &ReferralRow,
        action: &str,
        now: Instant,
    ) -> diesel::QueryResult<()> {
        use NotificationKind as K;
        let (kind, to_receiver) = match action {
            "submit" => (K::ReferralSubmitted, true),
            "acknowledge" => (K::ReferralAcknowledged, false),
            "accept" => (K::ReferralAccepted, false),
            "decline" => (K::ReferralDeclined, false),
            "complete" => (K::ReferralCompleted, false),
            // A draft was never seen by the receiver: nothing to withdraw there.
            "withdraw" if referral.submitted_at.is_some() => (K::ReferralWithdrawn, true),
            _ => return Ok(()),
        };
        let recipient = if to_receiver {
            &referral.to_organisation
        } else {
            &referral.from_organisation
        };
        self.queue(conn, kind, recipient, referral, None, now)
    }

    /// The notice `domain::referral::effects` decided on, to `recipient`.
    pub fn referral_notice(
        &self,
        conn: &mut AnyConnection,
        referral: &ReferralRow,
        kind: NotificationKind,
        recipient: &str,
        now: Instant,
    ) -> diesel::QueryResult<()> {
        self.queue(conn, kind, recipient, referral, None, now)
    }

    /// Steps are overdue: the receiver and the national focal point by mail, both parties
    /// by webhook; written in multi-row inserts (the deadline watcher escalates in batches).
    pub fn steps_overdue(
        &self,
        conn: &mut AnyConnection,
        overdue: &[(&ReferralRow, &str)],
        now: Instant,
    ) -> diesel::QueryResult<()> {
        let focal = self.registry.focal_point().map(|o| o.slug.as_str());
        let at = now.0.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut mails = Vec::new();
        let mut events = Vec::new();
        for (referral, step) in overdue {
            let about = Self::about_referral(referral);
            let mut recipients = vec![referral.to_organisation.as_str()];
            if let Some(focal) = focal
                && focal != referral.to_organisation
            {
                recipients.push(focal);
            }
            mails.extend(
                recipients
                    .into_iter()
                    .filter_map(|to| self.message_about(NotificationKind::StepOverdue, to, &about, Some(step))),
            );
            // Webhooks to the two parties, who may read the referral (the focal point follows
            // overdue steps in its console).
            events.extend(self.webhook_events(
                EventType::StepOverdue,
                Resource::Referral(referral.id.0),
                &[&referral.from_organisation, &referral.to_organisation],
                &at,
            ));
        }
        outbox::enqueue_all(conn, &mails, now)?;
        webhook_rows::enqueue_all(conn, &events, now)?;
        Ok(())
    }

    /// Consent withdrawn: the receiver of an open (handed-over) referral resting on it.
    pub fn consent_withdrawn(
        &self,
        conn: &mut AnyConnection,
        referral: &ReferralRow,
        now: Instant,
    ) -> diesel::QueryResult<()> {
        self.queue(
            conn,
            NotificationKind::ConsentWithdrawn,
            &referral.to_organisation,
            referral,
            None,
            now,
        )?;
        self.webhook(
            conn,
            EventType::ConsentWithdrawn,
            Resource::Referral(referral.id.0),
            &[referral.to_organisation.as_str()],
            now,
        )
    }

    /// A case's personal data was erased: each organisation that received a referral.
    pub fn case_erased(
        &self,
        conn: &mut AnyConnection,
        referral: &ReferralRow,
        now: Instant,
    ) -> diesel::QueryResult<()> {
        self.queue(
            conn,
            NotificationKind::CaseErased,
            &referral.to_organisation,
            referral,
            None,
            now,
        )
    }

    /// A case's personal data was erased: the police organisation of a three-way
    /// conversation it was invited to.
    pub fn case_erased_to_police(
        &self,
        conn: &mut AnyConnection,
        conversation: &ThreeWayRow,
        now: Instant,
    ) -> diesel::QueryResult<()> {
        let about = About {
            id: conversation.id,
            from_organisation: &conversation.organisation,
            to_organisation: &conversation.police_organisation,
            path: format!("/api/v1/three-way-conversations/{}", conversation.id.0),
            referral: None,
        };
        self.queue_about(
            conn,
            NotificationKind::CaseErased,
            &conversation.police_organisation,
            &about,
            None,
            now,
        )
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Queues `event` for the webhook subscriptions of `organisations` that listen to it, in
    /// the caller's transaction. The body is thin: `domain::webhook::payload`.
    pub fn webhook(
        &self,
        conn: &mut AnyConnection,
        event: EventType,
        resource: Resource,
        organisations: &[&str],
        now: Instant,
    ) -> diesel::QueryResult<()> {
        let at = now.0.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let events = self.webhook_events(event, resource, organisations, &at);
        webhook_rows::enqueue_all(conn, &events, now).map(|_| ())
    }

    /// What one event queues: its payload for each organisation named, once each.
    fn webhook_events<'o>(
        &self,
        event: EventType,
        resource: Resource,
        organisations: &[&'o str],
        at: &str,
    ) -> Vec<(&'o str, EventType, String)> {
        let body = webhook::payload(event, at, resource, &self.public_base_url);
        let mut told: Vec<&str> = Vec::new();
        for organisation in organisations {
            if !told.contains(organisation) {
                told.push(organisation);
            }
        }
        told.into_iter().map(|o| (o, event, body.clone())).collect()
    }

    /// After a referral transition: the webhook event it raises, to whoever hears it.
    pub fn referral_event(
        &self,
        conn: &mut AnyConnection,
        referral: &ReferralRow,
        action: &str,
        now: Instant,
    ) -> diesel::QueryResult<()> {
        let parties = ReferralParties {
            from: &referral.from_organisation,
            to: &referral.to_organisation,
            handed_over: referral.submitted_at.is_some(),
        };
        match webhook::referral_event(action, parties) {
            Some((event, organisations)) => {
                self.webhook(conn, event, Resource::Referral(referral.id.0), &organisations, now)
            }
            None => Ok(()),
        }
    }

    /// The police organisation was asked to join a three-way conversation.
    pub fn three_way_requested(
        &self,
        conn: &mut AnyConnection,
        conversation: uuid::Uuid,
        police_organisation: &str,
        now: Instant,
    ) -> diesel::QueryResult<()> {
        self.webhook(
            conn,
            EventType::ThreeWayRequested,
            Resource::Conversation(conversation),
            &[police_organisation],
            now,
        )
    }

    /// A subscription was disabled: its contact address (or the organisation's intake
    /// address) hears why. Names the endpoint's host only.
    pub fn webhook_disabled(
        &self,
        conn: &mut AnyConnection,
        subscription: &SubscriptionRow,
        reason: &str,
        now: Instant,
    ) -> diesel::QueryResult<()> {
        let Some(organisation) = self.organisation(&subscription.organisation) else {
            return Ok(());
        };
        let host = url::Url::parse(&subscription.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        let mail = render(&MailFacts {
            kind: NotificationKind::WebhookDisabled,
            reference: reference(&subscription.id.0),
            from_organisation: organisation.name.clone(),
            to_organisation: host,
            step: Some(reason.to_string()),
            link: format!("{}/api/v1/webhooks/{}", self.public_base_url, subscription.id.0),
        });
        let recipient = if subscription.contact_email.is_empty() {
            organisation.intake_email.clone()
        } else {
            subscription.contact_email.clone()
        };
        outbox::enqueue(
            conn,
            &NewNotification {
                kind: NotificationKind::WebhookDisabled,
                recipient,
                recipient_org: organisation.slug.clone(),
                referral_id: None,
                subject: mail.subject,
                body: mail.body,
            },
            now,
        )
        .map(|_| ())
    }
}

/// Delivery rounds until the process ends: again at once while a round delivered something
/// (more may be waiting), after `poll` otherwise. Each round runs as its own task, so even a
/// panic in a mail or HTTP library cannot stop delivery for good.
pub(crate) async fn keep_delivering<F, Fut>(what: &'static str, poll: std::time::Duration, round: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<usize, crate::db::DbError>> + Send + 'static,
{
    loop {
        match tokio::spawn(round()).await {
            Ok(Ok(done)) if done > 0 => continue,
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::error!(error = %error, "{what} delivery round failed"),
            Err(error) => tracing::error!(error = %error, "{what} delivery round panicked"),
        }
        tokio::time::sleep(poll).await;
    }
}

/// A worker's identity in leases: host and process, plus a random part.
pub fn worker_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "nrm".into());
    format!(
        "{host}-{}-{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}
