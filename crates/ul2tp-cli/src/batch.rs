//! `-batch FILE`: the line syntax of iproute2's batch mode (`getcmdline()` and `makeargs()`
//! in iproute2's `lib/utils.c`), as pure functions.
//!
//! * `#` starts a comment, wherever it is (a word cannot contain it);
//! * a line ending in `\` continues on the next one; a command is reported by the number of
//!   its last physical line, as iproute2 does;
//! * words are separated by blanks; a word starting with `'` or `"` runs to the next same
//!   quote (no escapes inside);
//! * blank lines are skipped;
//! * beyond iproute2: a first word `l2tp` is dropped, so that the lines of an `ip -batch`
//!   file (`l2tp add tunnel ...`) work unchanged.

use std::io::BufRead;

/// One command of a batch file: its words and the (1-based) number of its last line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchLine {
    /// The number of the command's last physical line.
    pub line: usize,
    /// The words, or why the line could not be split into words.
    pub words: Result<Vec<String>, String>,
}

/// Split a command line into words (`makeargs()`).
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let line = line.split('#').next().unwrap_or("");
    let is_ws = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    let mut words = Vec::new();
    let mut rest = line;
    loop {
        rest = rest.trim_start_matches(is_ws);
        let Some(first) = rest.chars().next() else {
            break;
        };
        if first == '\'' || first == '"' {
            let body = &rest[1..];
            let Some(end) = body.find(first) else {
                return Err("Unterminated quoted string".to_string());
            };
            words.push(body[..end].to_string());
            rest = &body[end + 1..];
        } else {
            let end = rest.find(is_ws).unwrap_or(rest.len());
            words.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    if words.first().is_some_and(|w| w == "l2tp") {
        words.remove(0);
    }
    Ok(words)
}

/// The commands of a batch input, read lazily (so that `-batch -` acts on each line as it
/// arrives). Blank and comment-only lines are skipped. A read error (or text that is not
/// UTF-8) ends the input with `Err`.
pub struct BatchReader<R> {
    input: R,
    line: usize,
}

impl<R: BufRead> BatchReader<R> {
    /// Read commands from `input`.
    pub fn new(input: R) -> Self {
        BatchReader { input, line: 0 }
    }
}

impl<R: BufRead> Iterator for BatchReader<R> {
    type Item = std::io::Result<BatchLine>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let mut command = String::new();
            let mut got = false;
            loop {
                let mut buf = String::new();
                match self.input.read_line(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => return Some(Err(e)),
                }
                got = true;
                self.line += 1;
                let text = buf.strip_suffix('\n').unwrap_or(&buf);
                let text = text.strip_suffix('\r').unwrap_or(text);
                // A comment ends the command even after a backslash (iproute2 cuts the
                // comment before it looks for the continuation).
                let text = text.split('#').next().unwrap_or("");
                match text.strip_suffix('\\') {
                    Some(head) => {
                        command.push_str(head);
                        command.push(' ');
                    }
                    None => {
                        command.push_str(text);
                        break;
                    }
                }
            }
            if !got {
                return None;
            }
            let words = split_words(&command);
            if words.as_ref().is_ok_and(Vec::is_empty) {
                continue;
            }
            return Some(Ok(BatchLine {
                line: self.line,
                words,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<(usize, Result<Vec<String>, String>)> {
        BatchReader::new(text.as_bytes())
            .map(|l| l.unwrap())
            .map(|l| (l.line, l.words))
            .collect()
    }

    fn words(ws: &[&str]) -> Result<Vec<String>, String> {
        Ok(ws.iter().map(|w| w.to_string()).collect())
    }

    #[test]
    fn words_quotes_and_comments() {
        assert_eq!(
            split_words("  add  tunnel\ttunnel_id 1 "),
            words(&["add", "tunnel", "tunnel_id", "1"])
        );
        assert_eq!(
            split_words("add session name 'a b' x"),
            words(&["add", "session", "name", "a b", "x"])
        );
        assert_eq!(split_words("name \"q'x\"y"), words(&["name", "q'x", "y"]));
        assert_eq!(
            split_words("show tunnel # all of them"),
            words(&["show", "tunnel"])
        );
        assert_eq!(split_words("l2tp show tunnel"), words(&["show", "tunnel"]));
        assert_eq!(split_words("show l2tp"), words(&["show", "l2tp"]));
        assert_eq!(
            split_words("name 'open"),
            Err("Unterminated quoted string".to_string())
        );
        assert_eq!(split_words("   # only a comment"), words(&[]));
    }

    #[test]
    fn line_numbers_blank_lines_and_continuations() {
        let text = "# header\n\nadd tunnel \\\n  tunnel_id 1\r\nshow tunnel\n  \ndel 'x\nlast";
        assert_eq!(
            lines(text),
            vec![
                (4, words(&["add", "tunnel", "tunnel_id", "1"])),
                (5, words(&["show", "tunnel"])),
                (7, Err("Unterminated quoted string".to_string())),
                (8, words(&["last"])),
            ]
        );
        assert_eq!(lines(""), vec![]);
        // A continuation at the end of the input ends the command.
        assert_eq!(lines("show \\\n"), vec![(1, words(&["show"]))]);
    }

    #[test]
    fn not_utf8_is_an_error_not_a_panic() {
        let mut r = BatchReader::new(&b"show\n\xff\xfe\n"[..]);
        assert!(r.next().unwrap().is_ok());
        assert!(r.next().unwrap().is_err());
    }
}
