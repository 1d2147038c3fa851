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
