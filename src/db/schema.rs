//! Table definitions shared by both backends. Column types use `crate::db::types` for UUIDs
//! and instants so each backend stores them natively.

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::UtcTime;

    organisations (slug) {
        slug -> Text,
        name -> Text,
        kind -> Text,
        services -> Text,
        regions -> Text,
        intake_email -> Text,
        accepts_minors -> Bool,
        available_24_7 -> Bool,
        focal_point -> Bool,
        active -> Bool,
        updated_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbUuid, UtcTime};

    cases (id) {
        id -> DbUuid,
        organisation -> Text,
        created_by -> Text,
        created_at -> UtcTime,
        updated_at -> UtcTime,
        version -> BigInt,
        reporter_role -> Text,
        contact_channel -> Text,
        contact_date -> Date,
        exploitation_sexual -> Bool,
        exploitation_criminal -> Bool,
        exploitation_labour -> Bool,
        exploitation_other -> Bool,
        age_at_contact -> Nullable<Integer>,
        age_uncertain -> Bool,
        presumed_minor -> Bool,
        gender -> Nullable<Text>,
        nationality -> Nullable<Text>,
        region -> Nullable<Text>,
        language -> Nullable<Text>,
        pseudonym -> Nullable<Text>,
        police_report_intention -> Nullable<Text>,
        identification_status -> Text,
        reasonable_grounds_on -> Nullable<Date>,
        reflection_period_end -> Nullable<Date>,
        last_incident_date -> Nullable<Date>,
        needs -> Text,
        unaccompanied -> Bool,
        closed_at -> Nullable<UtcTime>,
        closed_reason -> Nullable<Text>,
        identifying_erased_at -> Nullable<UtcTime>,
        free_text_erased_at -> Nullable<UtcTime>,
        erasure_reason -> Nullable<Text>,
        pseudonym_index -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbUuid, UtcTime};

    case_identifying_details (case_id) {
        case_id -> DbUuid,
        name -> Nullable<Text>,
        date_of_birth -> Nullable<Text>,
        phone -> Nullable<Text>,
        email -> Nullable<Text>,
        address -> Nullable<Text>,
        name_index -> Nullable<Text>,
        updated_at -> UtcTime,
        name_index_scheme -> Integer,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbUuid, UtcTime};

    identification_decisions (id) {
        id -> DbUuid,
        case_id -> DbUuid,
        decision -> Text,
        basis -> Text,
        actor_sub -> Text,
        actor_org -> Text,
        decided_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbUuid, UtcTime};

    consents (id) {
        id -> DbUuid,
        case_id -> DbUuid,
        scope -> Text,
        organisation -> Text,
        given_by -> Text,
        method -> Text,
        information_language -> Text,
        recorded_by -> Text,
        recorded_at -> UtcTime,
        withdrawn_at -> Nullable<UtcTime>,
        withdrawn_by -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbUuid, UtcTime};

    legal_bases (id) {
        id -> DbUuid,
        case_id -> DbUuid,
        basis -> Text,
        justification -> Text,
        recorded_by -> Text,
        recorded_org -> Text,
        recorded_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbUuid, UtcTime};

    referrals (id) {
        id -> DbUuid,
        case_id -> DbUuid,
        from_organisation -> Text,
        to_organisation -> Text,
        services -> Text,
        urgency -> Text,
        note -> Nullable<Text>,
        state -> Text,
        version -> BigInt,
        consent_id -> Nullable<DbUuid>,
        created_by -> Text,
        created_at -> UtcTime,
        updated_at -> UtcTime,
        submitted_at -> Nullable<UtcTime>,
        acknowledged_at -> Nullable<UtcTime>,
        decided_at -> Nullable<UtcTime>,
        care_started_at -> Nullable<UtcTime>,
        closed_at -> Nullable<UtcTime>,
        decline_reason -> Nullable<Text>,
        outcome -> Nullable<Text>,
        eligibility_override -> Nullable<Text>,
        assigned_to -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbUuid, UtcTime};

    referral_history (id) {
        id -> DbUuid,
        referral_id -> DbUuid,
        seq -> Integer,
        action -> Text,
        from_state -> Text,
        to_state -> Text,
        actor_sub -> Text,
        actor_org -> Text,
        at -> UtcTime,
        reason_code -> Nullable<Text>,
        reason -> Nullable<Text>,
        outcome_code -> Nullable<Text>,
        outcome -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbUuid, UtcTime};

    three_way_conversations (id) {
        id -> DbUuid,
        case_id -> DbUuid,
        organisation -> Text,
        police_organisation -> Text,
        police_officer -> Nullable<Text>,
        state -> Text,
        version -> BigInt,
        scheduled_for -> Nullable<UtcTime>,
        held_at -> Nullable<UtcTime>,
        care_evaluation -> Nullable<Text>,
        police_evaluation -> Nullable<Text>,
        reporting_intention -> Nullable<Text>,
        created_by -> Text,
        created_at -> UtcTime,
        updated_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbUuid, UtcTime};

    anonymous_notifications (id) {
        id -> DbUuid,
        case_id -> DbUuid,
        from_organisation -> Text,
        focal_point -> Text,
        minor -> Bool,
        age_at_contact -> Nullable<Integer>,
        gender -> Nullable<Text>,
        nationality_group -> Text,
        exploitation_sexual -> Bool,
        exploitation_criminal -> Bool,
        exploitation_labour -> Bool,
        exploitation_other -> Bool,
        region -> Nullable<Text>,
        contact_date -> Date,
        created_by -> Text,
        created_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbUuid, UtcTime};

    idempotency_keys (organisation, actor_sub, key) {
        organisation -> Text,
        actor_sub -> Text,
        key -> Text,
        route -> Text,
        request_hash -> Text,
        resource_id -> DbUuid,
        created_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbUuid, UtcTime};

    webhook_subscriptions (id) {
        id -> DbUuid,
        organisation -> Text,
        url -> Text,
        event_types -> Text,
        contact_email -> Text,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_secret_until -> Nullable<UtcTime>,
        status -> Text,
        disabled_reason -> Nullable<Text>,
        failing_since -> Nullable<UtcTime>,
        created_by -> Text,
        created_at -> UtcTime,
        updated_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbUuid, UtcTime};

    webhook_deliveries (id) {
        id -> DbUuid,
        subscription_id -> DbUuid,
        event_type -> Text,
        body -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> UtcTime,
        lease_until -> Nullable<UtcTime>,
        leased_by -> Nullable<Text>,
        last_status -> Nullable<Integer>,
        last_latency_ms -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        created_at -> UtcTime,
        delivered_at -> Nullable<UtcTime>,
    }
}

diesel::joinable!(webhook_deliveries -> webhook_subscriptions (subscription_id));
diesel::allow_tables_to_appear_in_same_query!(webhook_deliveries, webhook_subscriptions);

// The deadline watcher's work list: referrals with no escalation for a step.
diesel::allow_tables_to_appear_in_same_query!(escalations, referrals);
diesel::allow_tables_to_appear_in_same_query!(escalations, cases);

diesel::joinable!(referrals -> cases (case_id));
diesel::joinable!(referral_history -> referrals (referral_id));
diesel::joinable!(consents -> cases (case_id));
diesel::joinable!(three_way_conversations -> cases (case_id));
diesel::joinable!(case_identifying_details -> cases (case_id));
diesel::allow_tables_to_appear_in_same_query!(
    cases,
    referrals,
    referral_history,
    consents,
    case_identifying_details,
    three_way_conversations
);

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbUuid, UtcTime};

    audit_log (seq) {
        seq -> BigInt,
        at -> UtcTime,
        actor_sub -> Text,
        actor_org -> Text,
        actor_roles -> Text,
        action -> Text,
        resource_type -> Text,
        resource_id -> Text,
        case_id -> Nullable<DbUuid>,
        outcome -> Text,
        prev_hash -> Text,
        hash -> Text,
        actor_kind -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbUuid, UtcTime};

    audit_pending (id) {
        id -> BigInt,
        at -> UtcTime,
        actor_sub -> Text,
        actor_org -> Text,
        actor_roles -> Text,
        action -> Text,
        resource_type -> Text,
        resource_id -> Text,
        case_id -> Nullable<DbUuid>,
        outcome -> Text,
        actor_kind -> Text,
    }
}

diesel::table! {
    audit_head (id) {
        id -> Integer,
        last_seq -> BigInt,
        last_hash -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbUuid, UtcTime};

    notifications (id) {
        id -> DbUuid,
        kind -> Text,
        recipient -> Text,
        recipient_org -> Text,
        referral_id -> Nullable<DbUuid>,
        subject -> Text,
        body -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> UtcTime,
        lease_until -> Nullable<UtcTime>,
        leased_by -> Nullable<Text>,
        last_error -> Nullable<Text>,
        created_at -> UtcTime,
        sent_at -> Nullable<UtcTime>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbUuid, UtcTime};

    escalations (referral_id, step) {
        referral_id -> DbUuid,
        step -> Text,
        due_at -> UtcTime,
        escalated_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::UtcTime;

    organisation_capacity (organisation, service) {
        organisation -> Text,
        service -> Text,
        places_free -> Integer,
        updated_by -> Text,
        updated_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbUuid, UtcTime};

    disclosures (id) {
        id -> DbUuid,
        case_id -> DbUuid,
        organisation -> Text,
        actor_sub -> Text,
        at -> UtcTime,
        basis_type -> Text,
        basis_ref -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::UtcTime;

    web_sessions (id_hash) {
        id_hash -> Text,
        csrf_token -> Text,
        actor_sub -> Text,
        organisation -> Text,
        roles -> Text,
        display_name -> Text,
        id_token_hint -> Nullable<Text>,
        created_at -> UtcTime,
        last_seen_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::UtcTime;

    staff_members (organisation, sub) {
        organisation -> Text,
        sub -> Text,
        display_name -> Text,
        roles -> Text,
        last_seen_at -> UtcTime,
    }
}
