//! Blocking client of the management API.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use ul2tp_api::{decode_line, encode_line, ApiError, Attrs, Command, Request, ServerMessage};

/// Why a request did not produce a reply.
#[derive(Debug)]
pub enum ClientError {
    /// The socket could not be reached or broke.
    Io(std::io::Error),
    /// The daemon refused the request.
    Api(ApiError),
    /// The daemon sent something that is not a reply to our request.
    Protocol(String),
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

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        ClientError::Io(e)
    }
}

/// The socket path to use: `explicit` if given, else `$UL2TP_SOCKET`, else the default.
pub fn socket_path(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    match std::env::var_os(ul2tp_api::SOCKET_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(ul2tp_api::DEFAULT_SOCKET),
    }
}

/// A connection to ul2tpd.
#[derive(Debug)]
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_seq: u64,
}

impl Client {
    /// Connect to the daemon's API socket.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let s = UnixStream::connect(path)?;
        let writer = s.try_clone()?;
        Ok(Client {
            reader: BufReader::new(s),
            writer,
            next_seq: 1,
        })
    }

    /// The underlying stream (for passing descriptors alongside a request).
    pub fn stream(&self) -> &UnixStream {
        &self.writer
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

    /// Send a request without waiting; returns its sequence number.
    pub fn send(&mut self, cmd: Command, attrs: Attrs, dump: bool) -> Result<u64, ClientError> {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.writer.write_all(&encode_line(&Request {
            seq,
            cmd,
            dump,
            attrs,
        }))?;
        Ok(seq)
    }

    /// Wait for the reply with sequence number `seq`, skipping events.
    pub fn reply(&mut self, seq: u64) -> Result<ServerMessage, ClientError> {
        loop {
            let msg = self.next_message()?;
            if msg.event.is_some() {
                continue;
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
            return Ok(msg);
        }
    }

    /// Read the next line from the daemon (reply or event).
    pub fn next_message(&mut self) -> Result<ServerMessage, ClientError> {
        let mut line = Vec::new();
        if self.reader.read_until(b'\n', &mut line)? == 0 {
            return Err(ClientError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "daemon closed the connection",
            )));
        }
        decode_line(&line).map_err(|e| ClientError::Protocol(e.message))
    }
}
