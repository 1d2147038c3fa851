//! The pure domain: rules that take data and return decisions. No actix, diesel, tokio,
//! clock or randomness here; time comes in as a parameter.

pub mod case;
pub mod consent;
pub mod organisation;
pub mod referral;
pub mod three_way;
