//! What one client may hold of the server: open connections per address, and how long a
//! request body may take to arrive. Without these, a few thousand connections that each
//! send a valid head and then a byte every few seconds hold their file descriptors for ever,
//! until the server cannot accept even a health check.
//!
//! - Connections are counted per TCP peer address when accepted (`on_connect`); trusted
//!   proxies are exempt, since every client behind them shares their address. A request on a
//!   connection over the cap is answered 429 at once, without reading its body, and the
//!   connection is closed.
//! - A request body must arrive whole within `server.body_read_timeout`; otherwise 408 and
//!   the connection is closed. (Slow request heads are actix's own `client_request_timeout`.)
//!   actix drains an unread *chunked* body after the answer for as long as it keeps coming;
//!   the answer to a chunked request therefore holds the body's reader until it is written,
//!   which makes actix close the connection instead.
//! - IPv6 peers count by /64, as the rate limiter does.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Extensions, Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::ConnectionType;
use actix_web::http::header::TRANSFER_ENCODING;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{Error, HttpMessage, ResponseError, web};
use futures_core::Stream;

use crate::error::ApiError;
use crate::ratelimit::TrustedProxies;

/// Open connections per address.
pub struct ConnectionLimits {
    max_per_address: u32,
    trusted: TrustedProxies,
    open: Mutex<HashMap<IpAddr, u32>>,
}

/// Held in a connection's extensions for as long as the connection lives.
struct Slot {
    limits: Arc<ConnectionLimits>,
    address: IpAddr,
    over_limit: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.limits.open.lock()
            && let Some(count) = open.get_mut(&self.address)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

impl ConnectionLimits {
    /// `max_per_address` 0 turns the cap off.
    pub fn new(max_per_address: u32, trusted: TrustedProxies) -> Arc<Self> {
        Arc::new(Self {
            max_per_address,
            trusted,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// For `HttpServer::on_connect`: counts the new connection against its peer address.
    pub fn on_connect(self: &Arc<Self>, connection: &dyn Any, extensions: &mut Extensions) {
        if self.max_per_address == 0 {
            return;
        }
        let Some(stream) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() else {
            return;
        };
        let Ok(peer) = stream.peer_addr() else { return };
        if self.trusted.contains(peer.ip()) {
            return;
        }
        let address = crate::ratelimit::address_key(peer.ip());
        let Ok(mut open) = self.open.lock() else { return };
        let count = open.entry(address).or_insert(0);
        *count += 1;
        let over_limit = *count > self.max_per_address;
        drop(open);
        extensions.insert(Slot {
            limits: self.clone(),
            address,
            over_limit,
        });
    }

    #[cfg(test)]
    fn open_from(&self, address: IpAddr) -> u32 {
        self.open
            .lock()
            .map(|o| o.get(&address).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

/// Refuses requests on connections over the per-address cap, and puts a deadline on reading
/// the body of every request.
pub async fn middleware(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if req.conn_data::<Slot>().is_some_and(|slot| slot.over_limit) {
        let mut response = ApiError::TooManyRequests { retry_after: 1 }.error_response();
        response.head_mut().set_connection_type(ConnectionType::Close);
        return Ok(req.into_response(response));
    }
    let timeout = req
        .app_data::<web::Data<BodyReadTimeout>>()
        .map(|t| t.0)
        .unwrap_or(Duration::from_secs(5));
    let payload = Rc::new(RefCell::new(Some(req.take_payload())));
    req.set_payload(Payload::from(
        Box::pin(Deadline::new(payload.clone(), timeout)) as Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>
    ));
    let chunked = req
        .headers()
        .get(TRANSFER_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let mut response = next.call(req).await?.map_into_boxed_body();
    if response.status() == actix_web::http::StatusCode::REQUEST_TIMEOUT {
        response
            .response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    if !chunked {
        // actix closes the connection itself when a body of known length was left unread.
        return Ok(response);
    }
    // A chunked body left unread would be drained for as long as the client keeps sending.
    // actix closes instead of draining when the body's reader is still alive as the answer
    // goes out: so the answer holds the reader until it is written.
    let reader = payload.borrow_mut().take();
    Ok(response.map_body(|_, body| BoxBody::new(Holding { body, _reader: reader })))
}

/// An answer's body that keeps the request body's reader alive until it is sent.
struct Holding {
    body: BoxBody,
    _reader: Option<Payload>,
}

impl MessageBody for Holding {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> actix_web::body::BodySize {
        self.body.size()
    }

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}

/// `server.body_read_timeout`, as app data.
#[derive(Debug, Clone, Copy)]
pub struct BodyReadTimeout(pub Duration);

/// A request body that fails with `TimedOut` once its deadline has passed. The reader is
/// shared with the middleware, which may hand it to the answer (`Holding`).
struct Deadline {
    inner: Rc<RefCell<Option<Payload>>>,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Deadline {
    fn new(inner: Rc<RefCell<Option<Payload>>>, timeout: Duration) -> Self {
        Self {
            inner,
            sleep: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

/// Whether a payload error is the body-read deadline.
pub fn is_body_timeout(error: &PayloadError) -> bool {
    matches!(error, PayloadError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut)
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the request body did not arrive in time",
            )))));
        }
        match self.inner.borrow_mut().as_mut() {
            Some(payload) => Pin::new(payload).poll_next(cx),
            None => Poll::Ready(None),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn slots_count_open_connections_and_free_them_on_close() {
        let limits = ConnectionLimits::new(2, TrustedProxies::default());
        let address: IpAddr = "198.51.100.4".parse().unwrap();
        let slot = |over_limit| Slot {
            limits: limits.clone(),
            address,
            over_limit,
        };
        limits.open.lock().unwrap().insert(address, 3);
        let (a, b, c) = (slot(false), slot(false), slot(true));
        assert_eq!(limits.open_from(address), 3);
        drop((a, b));
        assert_eq!(limits.open_from(address), 1);
        drop(c);
        assert_eq!(limits.open_from(address), 0);
        assert!(limits.open.lock().unwrap().is_empty(), "closed addresses are forgotten");
    }
}
