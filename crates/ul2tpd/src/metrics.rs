//! Prometheus / OpenMetrics endpoint: the ten counters of every tunnel and session
//! (docs/reference/kernel.md §3.1) and object counts, read from the registry at each scrape.
//!
//! Served on the address of the `[metrics]` section as `GET /metrics` over plain HTTP/1.1;
//! nothing is counted twice and nothing is logged per packet.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry as PromRegistry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use ul2tp_api::Stats;
use ul2tp_core::Registry;

/// A counter: its name, help text and how to read it.
type CounterDef = (&'static str, &'static str, fn(&Stats) -> u64);

/// The counters of `ul2tp_api::Stats`, with their help texts.
const COUNTERS: [CounterDef; 10] = [
    ("tx_packets", "L2TP packets transmitted", |s| s.tx_packets),
    (
        "tx_bytes",
        "L2TP bytes transmitted (header included)",
        |s| s.tx_bytes,
    ),
    ("tx_errors", "transmit failures", |s| s.tx_errors),
    ("rx_packets", "packets delivered to the pseudowire", |s| {
        s.rx_packets
    }),
    ("rx_bytes", "L2TP bytes received (header included)", |s| {
        s.rx_bytes
    }),
    (
        "rx_seq_discards",
        "packets discarded by sequence number checks",
        |s| s.rx_seq_discards,
    ),
    (
        "rx_cookie_discards",
        "packets discarded for a cookie mismatch",
        |s| s.rx_cookie_discards,
    ),
    (
        "rx_oos_packets",
        "out-of-sequence packets queued for reordering",
        |s| s.rx_oos_packets,
    ),
    ("rx_errors", "receive discards", |s| s.rx_errors),
    (
        "rx_invalid",
        "invalid packets (version mismatch, missing fields)",
        |s| s.rx_invalid,
    ),
];

/// Label set of one object.
type Labels = Vec<(&'static str, String)>;

#[derive(Debug)]
struct L2tpCollector {
    registry: Arc<Registry>,
}

impl Collector for L2tpCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let tunnels: Vec<(Labels, Stats)> = self
            .registry
            .tunnels()
            .iter()
            .map(|t| (vec![("tunnel_id", t.tunnel_id().to_string())], t.stats()))
            .collect();
        let sessions: Vec<(Labels, Stats)> = self
            .registry
            .sessions()
            .iter()
            .map(|s| {
                let mut l = vec![
                    ("tunnel_id", s.tunnel_id().to_string()),
                    ("session_id", s.session_id().to_string()),
                ];
                if let Some(name) = s.ifname() {
                    l.push(("ifname", name.to_string()));
                }
                (l, s.stats())
            })
            .collect();
        for (kind, objects) in [("tunnel", &tunnels), ("session", &sessions)] {
            let count = ConstGauge::new(objects.len() as i64);
            let name = format!("ul2tp_{kind}s");
            let help = format!("number of {kind}s");
            count.encode(encoder.encode_descriptor(&name, &help, None, MetricType::Gauge)?)?;
            for (counter, help, get) in COUNTERS {
                let name = format!("ul2tp_{kind}_{counter}");
                let mut family =
                    encoder.encode_descriptor(&name, help, None, MetricType::Counter)?;
                for (labels, stats) in objects {
                    ConstCounter::new(get(stats)).encode(family.encode_family(labels)?)?;
                }
            }
        }
        Ok(())
    }
}

/// The exposition text of all metrics.
pub fn render(registry: &Arc<Registry>) -> String {
    let mut reg = PromRegistry::default();
    reg.register_collector(Box::new(L2tpCollector {
        registry: registry.clone(),
    }));
    let mut out = String::new();
    // Encoding into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &reg);
    out
}

/// Serve `GET /metrics` on `listener` forever.
pub async fn serve(listener: TcpListener, registry: Arc<Registry>) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            // Read the request head (bounded); the body of a GET is empty.
            while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 8192 {
                match tokio::time::timeout(std::time::Duration::from_secs(5), conn.read(&mut buf))
                    .await
                {
                    Ok(Ok(n)) if n > 0 => req.extend_from_slice(&buf[..n]),
                    _ => return,
                }
            }
            let (status, ctype, body) =
                if req.starts_with(b"GET /metrics ") || req.starts_with(b"GET /metrics?") {
                    (
                        "200 OK",
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        render(&registry),
                    )
                } else {
                    ("404 Not Found", "text/plain", "try /metrics\n".to_string())
                };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes()).await;
            let _ = conn.write_all(body.as_bytes()).await;
        });
    }
}
