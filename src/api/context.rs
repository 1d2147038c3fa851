//! What every handler gets besides the caller: the database, the application services and
//! the clock, and the one way to run a use case of `app` for a request.

use std::sync::Arc;

use actix_web::{HttpRequest, web};

use crate::app::{AppError, AppResult, Ctx, Services};
use crate::clock::SharedClock;
use crate::db::{Db, Instant};
use crate::domain::access::Actor;
use crate::error::ApiError;

pub struct Context {
    pub db: web::Data<Db>,
    pub services: web::Data<Services>,
    pub clock: web::Data<SharedClock>,
}

impl actix_web::FromRequest for Context {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        let load = || -> Option<Context> {
            Some(Context {
                db: req.app_data::<web::Data<Db>>()?.clone(),
                services: req.app_data::<web::Data<Services>>()?.clone(),
                clock: req.app_data::<web::Data<SharedClock>>()?.clone(),
            })
        };
        std::future::ready(load().ok_or_else(|| ApiError::internal("application state missing")))
    }
}

impl Context {
    pub fn now(&self) -> Instant {
        Instant::from_utc(self.clock.now())
    }

    pub fn registry(&self) -> &crate::domain::organisation::Registry {
        &self.services.registry
    }

    pub fn settings(&self) -> &crate::config::Settings {
        &self.services.settings
    }

    /// Runs a use case in one write transaction.
    pub async fn write<T, F>(&self, actor: Actor, use_case: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut Ctx) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let (services, now) = (self.services.clone().into_inner(), self.now());
        self.db
            .write(move |conn| run(conn, &actor, now, &services, use_case))
            .await
            .map_err(ApiError::from)
    }

    /// Runs a reading use case on one connection, without a transaction of its own.
    pub async fn read<T, F>(&self, actor: Actor, use_case: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut Ctx) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let (services, now) = (self.services.clone().into_inner(), self.now());
        self.db
            .run(move |conn| run(conn, &actor, now, &services, use_case))
            .await
            .map_err(ApiError::from)
    }

    /// Runs a report in one read-only snapshot (see `db::report_transaction`).
    pub async fn report<T, F>(&self, actor: Actor, use_case: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut Ctx) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let (services, now) = (self.services.clone().into_inner(), self.now());
        self.db
            .report(move |conn| run(conn, &actor, now, &services, use_case))
            .await
            .map_err(ApiError::from)
    }
}

fn run<T>(
    conn: &mut crate::db::AnyConnection,
    actor: &Actor,
    now: Instant,
    services: &Arc<Services>,
    use_case: impl FnOnce(&mut Ctx) -> AppResult<T>,
) -> Result<T, AppError> {
    use_case(&mut Ctx::new(conn, actor, now, services))
}
