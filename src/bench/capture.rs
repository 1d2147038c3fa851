//! A loopback proxy between a service instance and PostgreSQL that records what the
//! service sends, so the pgbench comparison runs the statements the service really issues
//! rather than a hand-written imitation of them.
//!
//! It reads the frontend side of the wire protocol: simple queries (`Q`, how `BEGIN` and
//! `COMMIT` travel) and extended-protocol `Parse`/`Bind` pairs with their parameter values.
//! Everything is forwarded unchanged; the server side is copied back untouched. Only for
//! benchmarking: it speaks no TLS, so the service connects to it with `sslmode=disable`.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// One bound parameter as it went over the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    Null { oid: u32 },
    Value { oid: u32, binary: bool, bytes: Vec<u8> },
}

/// One statement as executed: its SQL text and parameter values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Which proxied connection sent it (connections are numbered from 0).
    pub connection: usize,
    pub sql: String,
    pub params: Vec<Param>,
    pub sent: Sent,
}

/// How a statement travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// A simple query (`Q`), as `BEGIN` and `COMMIT` go.
    Simple,
    /// An unnamed extended-protocol statement: the server parses and plans it anew at
    /// every call.
    Unnamed,
    /// A named statement, parsed once per connection and bound again at every call.
    Prepared,
}

/// What every connection sent, in order of arrival.
#[derive(Clone, Default)]
pub struct Recording(Arc<Mutex<Vec<Statement>>>);

impl Recording {
    fn push(&self, statement: Statement) {
        if let Ok(mut log) = self.0.lock() {
            log.push(statement);
        }
    }

    /// Statements recorded so far.
    pub fn len(&self) -> usize {
        self.0.lock().map(|log| log.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Statements recorded from position `from` on.
    pub fn since(&self, from: usize) -> Vec<Statement> {
        self.0
            .lock()
            .map(|log| log.get(from..).map(<[Statement]>::to_vec).unwrap_or_default())
            .unwrap_or_default()
    }
}

/// A running proxy. Its threads live as long as the process; a benchmark run is short.
pub struct Proxy {
    pub port: u16,
    pub recording: Recording,
}

impl Proxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`
    /// (`host:port`).
    pub fn start(upstream: String) -> io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let recording = Recording::default();
        let log = recording.clone();
        std::thread::spawn(move || {
            for (number, client) in listener.incoming().enumerate() {
                let Ok(client) = client else { continue };
                let (upstream, log) = (upstream.clone(), log.clone());
                std::thread::spawn(move || {
                    if let Err(e) = relay(client, &upstream, number, &log) {
                        tracing::debug!(error = %e, "capture proxy connection ended");
                    }
                });
            }
        });
        Ok(Proxy { port, recording })
    }
}

fn relay(client: TcpStream, upstream: &str, connection: usize, log: &Recording) -> io::Result<()> {
    let server = TcpStream::connect(upstream)?;
    let (mut server_read, client_write) = (server.try_clone()?, client.try_clone()?);
    std::thread::spawn(move || {
        let mut client_write = client_write;
        let _ = io::copy(&mut server_read, &mut client_write);
        let _ = client_write.shutdown(Shutdown::Both);
    });
    let result = record_frontend(client, server.try_clone()?, connection, log);
    let _ = server.shutdown(Shutdown::Both);
    result
}

/// Protocol codes of the untyped requests a client may send before its startup message.
const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;

fn record_frontend(mut client: TcpStream, mut server: TcpStream, connection: usize, log: &Recording) -> io::Result<()> {
    // Untyped: (SSL or GSS encryption requests, answered "N" by a plain server, then) the
    // startup message.
    loop {
        let mut len = [0u8; 4];
        client.read_exact(&mut len)?;
        let mut body = vec![0u8; (u32::from_be_bytes(len) as usize).saturating_sub(4)];
        client.read_exact(&mut body)?;
        server.write_all(&len)?;
        server.write_all(&body)?;
        let code = body.get(..4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
        if code != Some(SSL_REQUEST) && code != Some(GSSENC_REQUEST) {
            break;
        }
    }
    // Prepared statements of this connection: name -> (SQL, parameter type OIDs).
    let mut prepared: HashMap<String, (String, Vec<u32>)> = HashMap::new();
    loop {
        let mut head = [0u8; 5];
        client.read_exact(&mut head)?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len.saturating_sub(4)];
        client.read_exact(&mut body)?;
        server.write_all(&head)?;
        server.write_all(&body)?;
        let mut r = Reader::new(&body);
        match head[0] {
            b'Q' => log.push(Statement {
                connection,
                sql: r.cstr()?,
                params: Vec::new(),
                sent: Sent::Simple,
            }),
            b'P' => {
                let name = r.cstr()?;
                let sql = r.cstr()?;
                let count = r.u16()? as usize;
                let oids = (0..count).map(|_| r.u32()).collect::<io::Result<Vec<_>>>()?;
                prepared.insert(name, (sql, oids));
            }
            b'B' => {
                let _portal = r.cstr()?;
                let name = r.cstr()?;
                let formats = (0..r.u16()?).map(|_| r.u16()).collect::<io::Result<Vec<_>>>()?;
                let count = r.u16()? as usize;
                let (sql, oids) = prepared.get(&name).cloned().unwrap_or_default();
                let mut params = Vec::with_capacity(count);
                for i in 0..count {
                    let oid = oids.get(i).copied().unwrap_or(0);
                    // One format code applies to all parameters; none means text.
                    let binary = match formats.len() {
                        0 => false,
                        1 => formats[0] == 1,
                        _ => formats.get(i) == Some(&1),
                    };
                    let size = r.u32()? as i32;
                    params.push(if size < 0 {
                        Param::Null { oid }
                    } else {
                        Param::Value {
                            oid,
                            binary,
                            bytes: r.bytes(size as usize)?.to_vec(),
                        }
                    });
                }
                log.push(Statement {
                    connection,
                    sql,
                    params,
                    sent: if name.is_empty() { Sent::Unnamed } else { Sent::Prepared },
                });
            }
            b'X' => return Ok(()),
            _ => {}
        }
    }
}

/// Reads the big-endian fields of one protocol message.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, at: 0 }
    }

    pub(crate) fn bytes(&mut self, n: usize) -> io::Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|end| *end <= self.buf.len());
        let end = end.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "truncated message"))?;
        let slice = &self.buf[self.at..end];
        self.at = end;
        Ok(slice)
    }

    pub(crate) fn u16(&mut self) -> io::Result<u16> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> io::Result<u32> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn cstr(&mut self) -> io::Result<String> {
        let rest = &self.buf[self.at..];
        let end = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unterminated string"))?;
        let text = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.at += end + 1;
        Ok(text)
    }
}
