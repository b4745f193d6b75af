//! The `[metrics]` endpoint of two daemons (a LAC and an LNS with the control protocol and
//! PPP): the Prometheus text format 0.0.4 by default, checked by `promtool check metrics`;
//! OpenMetrics when the Accept header asks for it; HEAD, `/` and 404. The control-plane
//! metrics count the messages of a dynamic tunnel; a wrong CHAP secret counts an
//! authentication failure on both sides. The Grafana dashboard (contrib/grafana/ul2tp.json)
//! uses only metrics a scrape has.

use std::collections::BTreeSet;
use std::time::Duration;

use ul2tp_it::metrics::{http, promtool, scrape, value};
use ul2tp_it::{wait_until, Daemon, Netns};

/// Wait until `series` has value `want` in a scrape of `ns`.
fn wait_value(ns: &Netns, series: &str, want: f64) {
    let mut last = String::new();
    let ok = wait_until(Duration::from_secs(10), || {
        last = scrape(ns);
        value(&last, series) == Some(want)
    });
    assert!(ok, "{series} != {want} in:\n{last}");
}

/// Metric names (`ul2tp_…`) in the expressions of the dashboard's panels and variables.
fn dashboard_metrics() -> BTreeSet<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../contrib/grafana/ul2tp.json"
    );
    let text = std::fs::read_to_string(path).expect("contrib/grafana/ul2tp.json");
    let dash: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    for p in dash["panels"].as_array().expect("panels") {
        assert!(p["title"].is_string(), "panel without a title: {p}");
        for t in p["targets"].as_array().expect("targets") {
            exprs.push(t["expr"].as_str().expect("expr").to_string());
        }
    }
    for v in dash["templating"]["list"].as_array().expect("variables") {
        if let Some(q) = v["definition"].as_str() {
            exprs.push(q.to_string());
        }
    }
    let mut names = BTreeSet::new();
    for e in &exprs {
        let mut rest = e.as_str();
        while let Some(i) = rest.find("ul2tp_") {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(tail[..end].to_string());
            rest = &tail[end..];
        }
    }
    names
}

/// Names of the samples in a text-format scrape.
fn sample_names(body: &str) -> BTreeSet<String> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

struct Dir(std::path::PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn metrics_of_a_lac_and_an_lns() {
    let (a, b) = ul2tp_it::linked_hosts("ma", "mb");
    let dir = Dir(std::env::temp_dir().join(ul2tp_it::unique("metrics")));
    std::fs::create_dir_all(&dir.0).unwrap();
    let (ca, cb) = (dir.0.join("lac.toml"), dir.0.join("lns.toml"));
    let metrics = "[metrics]\nlisten = \"127.0.0.1:9650\"\n";
    std::fs::write(
        &ca,
        format!("{metrics}[control]\nlisten = \"192.0.2.1:1701\"\n"),
    )
    .unwrap();
    std::fs::write(
        &cb,
        format!(
            "{metrics}[control]\nlisten = \"192.0.2.2:1701\"\nhost_name = \"lns\"\n\
             ppp_local = \"10.96.0.1\"\nppp_pool = \"10.96.0.10-10.96.0.19\"\n\
             ppp_auth = \"chap\"\nppp_users = {{ alice = \"wonderland\" }}\n"
        ),
    )
    .unwrap();
    let lac = Daemon::start(&a, &["--config", ca.to_str().unwrap()]);
    let lns = Daemon::start(&b, &["--config", cb.to_str().unwrap()]);

    // Before any tunnel: valid, with the control metrics at zero.
    let body = scrape(&a);
    promtool(&body);
    assert_eq!(
        value(&body, "ul2tp_control_tunnels{state=\"established\"}"),
        Some(0.0)
    );
    assert_eq!(
        value(&body, "ul2tp_control_messages_sent_total{type=\"SCCRQ\"}"),
        Some(0.0)
    );
    assert!(!body.contains("# EOF") && !body.contains("# UNIT"));

    // A static tunnel and session on the LAC.
    lac.ul2tp("add tunnel tunnel_id 3000 peer_tunnel_id 4000 local 127.0.0.1 remote 127.0.0.1 udp_sport 7800 udp_dport 7801");
    lac.ul2tp("add session tunnel_id 3000 session_id 1000 peer_session_id 2000 name met0");

    // A dynamic L2TPv2 tunnel: SCCRQ, SCCRP, SCCCN (and the LNS's ZLB for the SCCCN).
    let tid = lac.connect_tunnel("192.0.2.2 version 2");
    wait_value(&a, "ul2tp_control_tunnels{state=\"established\"}", 1.0);
    wait_value(&b, "ul2tp_control_tunnels{state=\"established\"}", 1.0);
    wait_value(
        &b,
        "ul2tp_control_messages_received_total{type=\"SCCCN\"}",
        1.0,
    );
    let (la, lb) = (scrape(&a), scrape(&b));
    let msgs = |body: &str, dir: &str| -> Vec<f64> {
        ["SCCRQ", "SCCRP", "SCCCN", "StopCCN", "HELLO"]
            .iter()
            .map(|t| {
                let series = format!("ul2tp_control_messages_{dir}_total{{type=\"{t}\"}}");
                value(body, &series).unwrap_or_else(|| panic!("no {series} in:\n{body}"))
            })
            .collect()
    };
    assert_eq!(msgs(&la, "sent"), [1.0, 0.0, 1.0, 0.0, 0.0], "{la}");
    assert_eq!(msgs(&la, "received"), [0.0, 1.0, 0.0, 0.0, 0.0], "{la}");
    assert_eq!(msgs(&lb, "sent"), [0.0, 1.0, 0.0, 0.0, 0.0], "{lb}");
    assert_eq!(msgs(&lb, "received"), [1.0, 0.0, 1.0, 0.0, 0.0], "{lb}");
    for body in [&la, &lb] {
        assert!(
            !body
                .lines()
                .any(|l| l.starts_with("ul2tp_control_retransmits_total") && !l.ends_with(" 0")),
            "retransmissions on a lossless link:\n{body}"
        );
        assert_eq!(value(body, "ul2tp_control_rx_malformed_total"), Some(0.0));
        assert_eq!(value(body, "ul2tp_control_rx_duplicates_total"), Some(0.0));
        assert_eq!(value(body, "ul2tp_tunnels_up{kind=\"dynamic\"}"), Some(1.0));
    }
    assert_eq!(value(&la, "ul2tp_tunnels_up{kind=\"static\"}"), Some(1.0));
    assert_eq!(value(&la, "ul2tp_sessions_up{kind=\"static\"}"), Some(1.0));
    assert_eq!(value(&lb, "ul2tp_tunnels_up{kind=\"static\"}"), Some(0.0));
    assert_eq!(value(&lb, "ul2tp_ppp_pool_addresses"), Some(10.0));
    assert_eq!(value(&lb, "ul2tp_ppp_pool_leased"), Some(0.0));
    promtool(&la);
    promtool(&lb);

    // A PPP call, CHAP with a wrong secret: the LNS rejects alice, the LAC is rejected; the
    // call is cleared.
    let sid = lac.connect_ppp_session(&tid);
    wait_value(&a, "ul2tp_sessions_up{kind=\"dynamic\"}", 1.0);
    wait_value(&b, "ul2tp_sessions_up{kind=\"dynamic\"}", 1.0);
    wait_value(&b, "ul2tp_control_sessions{state=\"established\"}", 1.0);
    assert_eq!(value(&scrape(&b), "ul2tp_ppp_pool_leased"), Some(1.0));
    let line =
        format!("ppp start tunnel_id {tid} session_id {sid} user alice password looking-glass");
    let o = lac.cli(&line.split_whitespace().collect::<Vec<_>>());
    assert_eq!(
        o.status.code(),
        Some(2),
        "ppp start with a wrong secret: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    wait_value(
        &b,
        "ul2tp_ppp_auth_failures_total{cause=\"peer_rejected\",protocol=\"chap\"}",
        1.0,
    );
    wait_value(
        &a,
        "ul2tp_ppp_auth_failures_total{cause=\"rejected_by_peer\",protocol=\"chap\"}",
        1.0,
    );
    wait_value(
        &b,
        "ul2tp_ppp_links_down_total{reason=\"auth_failed\"}",
        1.0,
    );
    // The call is cleared (CDN): one session down on each side, the lease given back.
    for ns in [&a, &b] {
        wait_value(ns, "ul2tp_control_sessions{state=\"established\"}", 0.0);
        wait_value(ns, "ul2tp_control_sessions{state=\"connecting\"}", 0.0);
    }
    wait_value(&b, "ul2tp_ppp_pool_leased", 0.0);
    let lb = scrape(&b);
    let downs: f64 = ["local", "peer", "protocol"]
        .iter()
        .filter_map(|r| {
            value(
                &lb,
                &format!("ul2tp_control_sessions_down_total{{reason=\"{r}\"}}"),
            )
        })
        .sum();
    assert_eq!(downs, 1.0, "{lb}");
    promtool(&lb);

    // Closing the tunnel: one tunnel down, by local request on the LAC, by the peer on the LNS.
    lac.ul2tp(&format!("disconnect tunnel_id {tid}"));
    wait_value(
        &a,
        "ul2tp_control_tunnels_down_total{reason=\"local\"}",
        1.0,
    );
    wait_value(&b, "ul2tp_control_tunnels_down_total{reason=\"peer\"}", 1.0);
    wait_value(&b, "ul2tp_tunnels_up{kind=\"dynamic\"}", 0.0);
    let la = scrape(&a);
    promtool(&la);
    // The counters of the tunnel that went stay counted: the call (ICRQ, ICCN, a CDN)
    // and the StopCCN.
    let lb = scrape(&b);
    for (body, series) in [
        (&la, "ul2tp_control_messages_sent_total{type=\"SCCRQ\"}"),
        (&la, "ul2tp_control_messages_sent_total{type=\"ICRQ\"}"),
        (&la, "ul2tp_control_messages_sent_total{type=\"ICCN\"}"),
        (&la, "ul2tp_control_messages_sent_total{type=\"StopCCN\"}"),
        (&lb, "ul2tp_control_messages_sent_total{type=\"ICRP\"}"),
        (
            &lb,
            "ul2tp_control_messages_received_total{type=\"StopCCN\"}",
        ),
    ] {
        assert_eq!(value(body, series), Some(1.0), "{series} in:\n{body}");
    }
    // A CDN cleared the call: the LNS's (it failed the peer), the LAC's (its PPP saw the
    // rejection), or both at once (they cross); each side sent at most one, and every CDN
    // sent was received.
    let cdn = |body: &str, dir: &str| {
        value(
            body,
            &format!("ul2tp_control_messages_{dir}_total{{type=\"CDN\"}}"),
        )
        .unwrap_or(0.0)
    };
    let (a_sent, b_sent) = (cdn(&la, "sent"), cdn(&lb, "sent"));
    assert!(
        a_sent + b_sent >= 1.0 && a_sent <= 1.0 && b_sent <= 1.0,
        "CDNs sent: LAC {a_sent}, LNS {b_sent}"
    );
    assert_eq!(
        (cdn(&lb, "received"), cdn(&la, "received")),
        (a_sent, b_sent),
        "every CDN sent was received"
    );

    // OpenMetrics on request.
    let (head, om) = http(
        &a,
        "GET",
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    );
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(
        head.contains("Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8"),
        "{head}"
    );
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(om.contains("# TYPE ul2tp_control_messages_sent counter"));
    // The text format by default.
    let (head, _) = http(&a, "GET", "/metrics", None);
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    // HEAD: the headers alone.
    let (head, body) = http(&a, "HEAD", "/metrics", None);
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("Content-Length: "), "{head}");
    assert!(body.is_empty(), "HEAD with a body: {body}");
    // `/` says where the metrics are; other paths are 404.
    let (head, body) = http(&a, "GET", "/", None);
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(body.contains("/metrics"), "{body}");
    let (head, _) = http(&a, "GET", "/nothing", None);
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");

    // Every metric the dashboard uses exists in a scrape (the LNS has the pool metrics).
    let mut have_names = sample_names(&la);
    have_names.extend(sample_names(&lb));
    let used = dashboard_metrics();
    assert!(used.len() > 10, "{used:?}");
    let missing: Vec<_> = used.difference(&have_names).collect();
    assert!(
        missing.is_empty(),
        "dashboard metrics not exported: {missing:?}"
    );
    drop(lns);
}
