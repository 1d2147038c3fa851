//! Notifications: who is told what, queued in the transaction of the change (the outbox),
//! delivered by a worker over SMTP, and the deadline watcher that escalates stalled steps.
//!
//! Handlers call `Notifier` inside their write transaction; nothing here sends mail from a
//! request. Mails are rendered by `domain::notification` from ids and organisation names
//! only.

pub mod deadlines;
pub mod worker;

use std::sync::Arc;

use crate::db::outbox::{self, NewNotification};
use crate::db::referrals::{ReferralRow, ThreeWayRow};
use crate::db::{AnyConnection, Id, Instant};
use crate::domain::notification::{MailFacts, NotificationKind, reference, render};
use crate::domain::organisation::{Organisation, Registry};

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
        let about = About {
            id: referral.id,
            from_organisation: &referral.from_organisation,
            to_organisation: &referral.to_organisation,
            // The referral's page: a browser signs in first, then lands on it.
            path: format!("/referrals/{}", referral.id.0),
            referral: Some(referral.id),
        };
        self.queue_about(conn, kind, recipient_slug, &about, step, now)
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
        let Some(recipient) = self.organisation(recipient_slug) else {
            return Ok(());
        };
        let facts = MailFacts {
            kind,
            reference: reference(&about.id.0),
            from_organisation: self.name(about.from_organisation),
            to_organisation: self.name(about.to_organisation),
            step: step.map(str::to_string),
            link: format!("{}{}", self.public_base_url, about.path),
        };
        let mail = render(&facts);
        outbox::enqueue(
            conn,
            &NewNotification {
                kind,
                recipient: recipient.intake_email.clone(),
                recipient_org: recipient.slug.clone(),
                referral_id: about.referral,
                subject: mail.subject,
                body: mail.body,
            },
            now,
        )
        .map(|_| ())
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

    /// A step is overdue: the receiver and the national focal point.
    pub fn step_overdue(
        &self,
        conn: &mut AnyConnection,
        referral: &ReferralRow,
        step: &str,
        now: Instant,
    ) -> diesel::QueryResult<()> {
        self.queue(
            conn,
            NotificationKind::StepOverdue,
            &referral.to_organisation,
            referral,
            Some(step),
            now,
        )?;
        if let Some(focal) = self.registry.focal_point()
            && focal.slug != referral.to_organisation
        {
            let slug = focal.slug.clone();
            self.queue(conn, NotificationKind::StepOverdue, &slug, referral, Some(step), now)?;
        }
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
