//! Log output for the journal: one line per event. The formatter writes each event through a
//! fresh [`OneLineWriter`], which turns line breaks inside the event (a peer's host name, an
//! error message that spans lines) into `\n` so that journald and `grep` see one record per
//! line.

use std::io::{self, Write};

/// `bytes` (one formatted event) as exactly one line: inner CR and LF escaped, one LF at the end.
pub fn one_line(bytes: &[u8]) -> Vec<u8> {
    let mut body = bytes;
    while let Some(rest) = body.strip_suffix(b"\n") {
        body = rest;
    }
    let mut out = Vec::with_capacity(body.len() + 8);
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b => out.push(b),
        }
    }
    out.push(b'\n');
    out
}

/// Collects one event and writes it as one line to `out` when dropped.
#[derive(Debug)]
pub struct OneLineWriter<W: Write> {
    buf: Vec<u8>,
    out: W,
}

impl<W: Write> OneLineWriter<W> {
    /// A writer for one event.
    pub fn new(out: W) -> Self {
        OneLineWriter {
            buf: Vec::new(),
            out,
        }
    }
}

impl<W: Write> Write for OneLineWriter<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for OneLineWriter<W> {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        // Nowhere to report a failed log write.
        let _ = self.out.write_all(&one_line(&self.buf));
        let _ = self.out.flush();
    }
}

/// The daemon's log writer: standard error, one line per event.
#[derive(Debug, Clone, Copy, Default)]
pub struct OneLineStderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for OneLineStderr {
    type Writer = OneLineWriter<io::Stderr>;

    fn make_writer(&'a self) -> Self::Writer {
        OneLineWriter::new(io::stderr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_become_one_line() {
        assert_eq!(one_line(b"INFO ready\n"), b"INFO ready\n");
        assert_eq!(one_line(b"INFO no newline"), b"INFO no newline\n");
        assert_eq!(
            one_line(b"WARN bad file:\n  line 2\r\n\n"),
            b"WARN bad file:\\n  line 2\\r\n"
        );
        assert_eq!(one_line(b""), b"\n");
    }

    #[test]
    fn the_writer_writes_once_when_dropped() {
        let mut out = Vec::new();
        {
            let mut w = OneLineWriter::new(&mut out);
            w.write_all(b"ERROR a\n").unwrap();
            w.write_all(b"b\n").unwrap();
        }
        assert_eq!(out, b"ERROR a\\nb\n");
        {
            let _unused = OneLineWriter::new(&mut out);
        }
        assert_eq!(out, b"ERROR a\\nb\n");
    }

    #[test]
    fn user_names_and_ids_are_fields_of_one_line() {
        use tracing_subscriber::fmt::MakeWriter;
        #[derive(Clone, Default)]
        struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        struct Guard(Shared);
        impl Write for Guard {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0 .0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        impl<'a> MakeWriter<'a> for Shared {
            type Writer = OneLineWriter<Guard>;
            fn make_writer(&'a self) -> Self::Writer {
                OneLineWriter::new(Guard(self.clone()))
            }
        }
        let sink = Shared::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(sink.clone())
            .with_ansi(false)
            .without_time()
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let user = String::from_utf8_lossy(b"al\nice\xff").into_owned();
            tracing::warn!(
                tunnel_id = 7u32,
                session_id = 9u32,
                user = ?user,
                "ppp0: PPP authentication of {user:?} failed"
            );
            tracing::error!("a message\nover two lines");
        });
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].contains("PPP authentication of \"al\\nice\u{fffd}\" failed")
                && lines[0].contains("tunnel_id=7")
                && lines[0].contains("session_id=9")
                && lines[0].contains("user=\"al\\nice\u{fffd}\""),
            "{text}"
        );
        assert!(lines[1].ends_with(r"a message\nover two lines"), "{text}");
    }
}
