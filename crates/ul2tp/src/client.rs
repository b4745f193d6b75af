//! Blocking client of the management API.
//!
//! Replies are read with `recvmsg` so that descriptors the daemon attaches (SCM_RIGHTS) stay
//! with the line they arrived with: the daemon sends a descriptor together with the first
//! byte of its reply line, in one `sendmsg`. The kernel may hand us the tail of an earlier
//! line and the descriptor-carrying line in the same `recvmsg`, and always stops reading
//! right after a message that carried descriptors, so the descriptors of one `recvmsg`
//! belong to the last line that starts within the bytes it returned.

use std::io::{self, Write};
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use ul2tp_api::{decode_line, encode_line, ApiError, Attrs, Command, Request, ServerMessage};

/// Longest reply line accepted (dumps of many objects are long, but not this long).
const MAX_LINE: usize = 64 << 20;

/// Why a request did not produce a reply.
#[derive(Debug)]
pub enum ClientError {
    /// The socket could not be reached or broke.
    Io(io::Error),
    /// The daemon refused the request.
    Api(ApiError),
    /// The daemon sent something that is not a reply to our request.
    Protocol(String),
}

impl ClientError {
    /// The errno number this error stands for: the daemon's errno for [`ClientError::Api`],
    /// the OS error for [`ClientError::Io`], `EPROTO` for a protocol error.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            ClientError::Io(e) => e.raw_os_error(),
            ClientError::Api(e) => Some(e.errno.number()),
            ClientError::Protocol(_) => Some(nix::libc::EPROTO),
        }
    }
}

impl core::fmt::Display for ClientError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "{e}"),
            ClientError::Api(e) => write!(f, "{e}"),
            ClientError::Protocol(e) => write!(f, "protocol error: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

impl From<ClientError> for io::Error {
    /// An API error becomes the OS error with the daemon's errno (what the kernel call would
    /// have returned); the daemon's sentence is lost, use [`ClientError`]'s `Display` for it.
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Io(e) => e,
            ClientError::Api(e) => io::Error::from_raw_os_error(e.errno.number()),
            ClientError::Protocol(m) => io::Error::new(io::ErrorKind::InvalidData, m),
        }
    }
}

/// The socket path to use: `explicit` if given, else `$UL2TP_SOCKET`, else the default
/// ([`ul2tp_api::default_socket_path`]: per named network namespace, else
/// `/run/ul2tp/ul2tpd.sock`).
pub fn socket_path(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    match std::env::var_os(ul2tp_api::SOCKET_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => ul2tp_api::default_socket_path(ul2tp_sys::netns::current_name().as_deref()),
    }
}

/// A connection to ul2tpd.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
    /// Received bytes not yet returned as lines; always starts at a line start.
    buf: Vec<u8>,
    /// Descriptors received, each with the offset in `buf` of the line they belong to.
    fd_marks: Vec<(usize, Vec<OwnedFd>)>,
    next_seq: u64,
}

/// The daemon's refusal of a whole connection (docs/security.md "Local API limits").
fn refused(e: &ApiError) -> ClientError {
    ClientError::Io(io::Error::other(format!(
        "{} ({})",
        e.message,
        e.errno.strerror()
    )))
}

impl Client {
    /// Connect to the daemon's API socket.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        Ok(Client::from_stream(UnixStream::connect(path)?))
    }

    /// Use an already connected stream (for example one end of a `UnixStream::pair`).
    pub fn from_stream(stream: UnixStream) -> Client {
        Client {
            stream,
            buf: Vec::new(),
            fd_marks: Vec::new(),
            next_seq: 1,
        }
    }

    /// The underlying stream (for passing descriptors alongside a request).
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// Send a request and wait for its reply; an error reply becomes [`ClientError::Api`].
    pub fn request(
        &mut self,
        cmd: Command,
        attrs: Attrs,
        dump: bool,
    ) -> Result<ServerMessage, ClientError> {
        let seq = self.send(cmd, attrs, dump)?;
        self.reply(seq)
    }

    /// Send a request with `fds_to_send` attached (SCM_RIGHTS, with the first byte of the
    /// line) and wait for its reply together with the descriptors attached to the reply.
    /// The descriptors are duplicated into the daemon; the caller keeps its own copies.
    pub fn request_with_fds(
        &mut self,
        cmd: Command,
        attrs: Attrs,
        dump: bool,
        fds_to_send: &[RawFd],
    ) -> Result<(ServerMessage, Vec<OwnedFd>), ClientError> {
        let seq = self.send_with_fds(cmd, attrs, dump, fds_to_send)?;
        self.reply_with_fds(seq)
    }

    /// Send a request without waiting; returns its sequence number.
    pub fn send(&mut self, cmd: Command, attrs: Attrs, dump: bool) -> Result<u64, ClientError> {
        let (seq, line) = self.encode(cmd, attrs, dump);
        match (&self.stream).write_all(&line) {
            Ok(()) => Ok(seq),
            Err(e) => Err(self.why_closed(e)),
        }
    }

    /// Send a request with descriptors attached without waiting; returns its sequence number.
    pub fn send_with_fds(
        &mut self,
        cmd: Command,
        attrs: Attrs,
        dump: bool,
        fds: &[RawFd],
    ) -> Result<u64, ClientError> {
        let (seq, line) = self.encode(cmd, attrs, dump);
        match ul2tp_sys::fdpass::send_all_with_fds(&self.stream, &line, fds) {
            Ok(_) => Ok(seq),
            Err(e) => Err(self.why_closed(e)),
        }
    }

    /// A failed write: when the daemon refused the connection (over its limits), the error
    /// line it sent before closing says why.
    fn why_closed(&mut self, e: io::Error) -> ClientError {
        if matches!(
            e.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
        ) {
            if let Ok((line, _)) = self.read_line() {
                if let Ok(ServerMessage {
                    seq: Some(0),
                    error: Some(a),
                    ..
                }) = decode_line::<ServerMessage>(&line)
                {
                    return refused(&a);
                }
            }
        }
        e.into()
    }

    fn encode(&mut self, cmd: Command, attrs: Attrs, dump: bool) -> (u64, Vec<u8>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let line = encode_line(&Request {
            seq,
            cmd,
            dump,
            attrs,
        });
        (seq, line)
    }

    /// Wait for the reply with sequence number `seq`, skipping events.
    pub fn reply(&mut self, seq: u64) -> Result<ServerMessage, ClientError> {
        self.reply_with_fds(seq).map(|(m, _)| m)
    }

    /// Wait for the reply with sequence number `seq`, skipping events, and return the
    /// descriptors that came with it.
    pub fn reply_with_fds(
        &mut self,
        seq: u64,
    ) -> Result<(ServerMessage, Vec<OwnedFd>), ClientError> {
        loop {
            let (msg, fds) = self.next_message_with_fds()?;
            if msg.event.is_some() {
                continue;
            }
            // A refusal of the whole connection (over the daemon's limits, docs/security.md)
            // comes as seq 0 before the daemon closes it: a transport failure, not an answer.
            if msg.seq == Some(0) && seq != 0 {
                if let Some(e) = msg.error {
                    return Err(refused(&e));
                }
            }
            if msg.seq != Some(seq) {
                return Err(ClientError::Protocol(format!(
                    "reply for {:?}, expected {seq}",
                    msg.seq
                )));
            }
            if let Some(e) = msg.error {
                return Err(ClientError::Api(e));
            }
            return Ok((msg, fds));
        }
    }

    /// Read the next line from the daemon (reply or event); descriptors that came with it
    /// are closed.
    pub fn next_message(&mut self) -> Result<ServerMessage, ClientError> {
        self.next_message_with_fds().map(|(m, _)| m)
    }

    /// Read the next line from the daemon with the descriptors that came with it.
    pub fn next_message_with_fds(&mut self) -> Result<(ServerMessage, Vec<OwnedFd>), ClientError> {
        let (line, fds) = self.read_line()?;
        let msg = decode_line(&line).map_err(|e| ClientError::Protocol(e.message))?;
        Ok((msg, fds))
    }

    fn read_line(&mut self) -> Result<(Vec<u8>, Vec<OwnedFd>), ClientError> {
        loop {
            if let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=nl).collect();
                let mut fds = Vec::new();
                let mut rest = Vec::new();
                for (pos, f) in self.fd_marks.drain(..) {
                    if pos <= nl {
                        fds.extend(f);
                    } else {
                        rest.push((pos - (nl + 1), f));
                    }
                }
                self.fd_marks = rest;
                return Ok((line, fds));
            }
            if self.buf.len() > MAX_LINE {
                return Err(ClientError::Protocol("reply line too long".into()));
            }
            let mut chunk = [0u8; 8192];
            let (n, fds) = match ul2tp_sys::fdpass::recv_with_fds(&self.stream, &mut chunk) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            if n == 0 {
                return Err(ClientError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "daemon closed the connection",
                )));
            }
            let start = self.buf.len();
            self.buf.extend_from_slice(&chunk[..n]);
            if !fds.is_empty() {
                // The last line start within this chunk (see the module comment); if none,
                // the chunk continues a line and the descriptors belong to that line.
                let pos = (start..start + n)
                    .rev()
                    .find(|&p| p == 0 || self.buf[p - 1] == b'\n')
                    .unwrap_or(start);
                self.fd_marks.push((pos, fds));
            }
        }
    }
}
