//! `nrm`: the national referral mechanism service. See `docs/architecture.md`.

pub mod api;
pub mod app;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connections;
pub mod crypto;
pub mod db;
pub mod demo;
pub mod domain;
pub mod error;
pub mod notify;
pub mod ratelimit;
pub mod retention;
pub mod startup;
pub mod telemetry;
pub mod web;
