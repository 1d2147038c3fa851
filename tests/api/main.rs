//! The API test suite: one binary, every API test on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod auth;
mod cli;
mod errors;
mod health;
mod migrations;
mod openapi;
mod organisations;
