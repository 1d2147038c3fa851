//! Ids of the things `nrm` keeps, one type each, so a referral id can never be passed where
//! a case id is meant. UUIDv7 values, made by the application layer (the domain has no
//! randomness); stored through `db::Id`.

use std::fmt;

macro_rules! id_type {
    ($( $(#[$meta:meta])* $name:ident ),+ $(,)?) => {
        $(
            $(#[$meta])*
            #[derive(
                Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
                serde::Serialize, serde::Deserialize, utoipa::ToSchema,
            )]
            #[serde(transparent)]
            #[schema(value_type = uuid::Uuid)]
            pub struct $name(pub uuid::Uuid);

            impl $name {
                /// Parses the text form; `None` for anything that is not a UUID.
                pub fn parse(text: &str) -> Option<Self> {
                    uuid::Uuid::parse_str(text).ok().map(Self)
                }
            }

            impl fmt::Display for $name {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    self.0.fmt(f)
                }
            }
        )+
    };
}

id_type! {
    /// A case: one possible victim's situation as it reached one organisation.
    CaseId,
    /// A referral: one handover of a case to another organisation.
    ReferralId,
    /// A recorded consent.
    ConsentId,
    /// A statutory basis recorded for a child's referral.
    LegalBasisId,
    /// A three-way conversation with the police.
    ConversationId,
    /// An anonymous notification to the focal point.
    AnonymousNotificationId,
    /// A message in the e-mail outbox.
    NotificationId,
    /// A webhook subscription of an organisation.
    SubscriptionId,
    /// One webhook delivery: its `webhook-id` on every attempt.
    DeliveryId,
}
