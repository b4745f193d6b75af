//! Why a command was refused: [`Error`].

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No such tunnel.
    NoTunnel,
    /// No such session.
    NoSession,
    /// The tunnel is closing.
    Closing,
    /// Configuration not usable (e.g. v2 over IP encapsulation).
    BadConfig(&'static str),
    /// No free identifiers.
    NoIds,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::NoTunnel => f.write_str("no such tunnel"),
            Error::NoSession => f.write_str("no such session"),
            Error::Closing => f.write_str("tunnel is closing"),
            Error::BadConfig(s) => write!(f, "bad configuration: {s}"),
            Error::NoIds => f.write_str("no free identifiers"),
        }
    }
}

impl std::error::Error for Error {}
