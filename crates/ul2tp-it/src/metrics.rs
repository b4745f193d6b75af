//! Scraping a daemon's `[metrics]` endpoint from inside its namespace, reading samples and
//! linting with `promtool` (docs/operations.md "Metrics").

use std::io::{Read, Write};

use crate::{have, Netns};

/// The `[metrics] listen` port the tests configure (on 127.0.0.1 in the daemon's namespace).
pub const PORT: u16 = 9650;

/// One HTTP/1.1 request to the metrics endpoint 127.0.0.1:`port` of `ns`: (status line and
/// headers, body).
pub fn http_at(
    ns: &Netns,
    port: u16,
    method: &str,
    path: &str,
    accept: Option<&str>,
) -> (String, String) {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{}\r\n",
        accept
            .map(|a| format!("Accept: {a}\r\n"))
            .unwrap_or_default()
    );
    let raw = ns.run_in(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to metrics");
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    });
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    (head.to_string(), body.to_string())
}

/// [`http_at`] on [`PORT`].
pub fn http(ns: &Netns, method: &str, path: &str, accept: Option<&str>) -> (String, String) {
    http_at(ns, PORT, method, path, accept)
}

/// `GET /metrics` (text format) from 127.0.0.1:`port` in `ns`: the body of a 200 response.
pub fn scrape_at(ns: &Netns, port: u16) -> String {
    let (head, body) = http_at(ns, port, "GET", "/metrics", None);
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    body
}

/// [`scrape_at`] on [`PORT`].
pub fn scrape(ns: &Netns) -> String {
    scrape_at(ns, PORT)
}

/// The value of the sample `series` (name and labels exactly as exposed) in a scrape, if
/// present.
pub fn value(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// `promtool check metrics` on `body`: exit 0 and no lint findings.
pub fn promtool(body: &str) {
    assert!(
        have("promtool"),
        "promtool is required (Debian package prometheus, installed by .ci/run)"
    );
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics: {}: {report}\n{body}",
        out.status
    );
}
