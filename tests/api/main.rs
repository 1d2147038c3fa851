//! The API test suite: one binary, every API test on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod access;
mod assignment;
mod auth;
mod bench;
mod browser;
mod cases;
mod cli;
mod demo;
mod docs;
mod erasure;
mod errors;
mod fhir;
mod first_use;
mod health;
mod htcds;
mod information_point;
mod layers;
mod limits;
mod machine_clients;
mod migrations;
mod notifications;
mod openapi;
mod organisations;
mod oversight;
mod privacy;
mod referrals;
mod routing;
mod scale_out;
mod singletons;
mod smtp;
mod theme;
mod three_way;
mod web;
mod webhooks;
