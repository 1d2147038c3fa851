//! The pure domain: rules that take data and return decisions. No actix, diesel, tokio,
//! clock or randomness here; time comes in as a parameter.

pub mod access;
pub mod audit;
pub mod case;
pub mod consent;
pub mod deadline;
pub mod fhir;
pub mod htcds;
pub mod ids;
pub mod information;
pub mod notification;
pub mod organisation;
pub mod problem;
pub mod referral;
pub mod retention;
pub mod routing;
pub mod stats;
pub mod text;
pub mod three_way;
pub mod webhook;
