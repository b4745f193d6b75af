//! Writes the seed corpora of the fuzz targets from test data inside the repository: every
//! L2TP datagram of the reference captures (tests/data/captures) for the data and control
//! targets, their PPP frames for the ppp target, the example configurations of
//! docs/config.md for the config target, and a few API request lines.
//!
//! `cargo run --example seed-corpora` (from fuzz/) fills fuzz/corpus/<target>/; existing files
//! are kept, so the corpora can grow across runs.

use std::path::{Path, PathBuf};

use ul2tp_wire::data::{classify_udp, UdpClass, V2DataHeader};
use ul2tp_wire::pcap::{extract, records};
use ul2tp_wire::Encap;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), bytes)
}

fn main() -> std::io::Result<()> {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let repo = fuzz.join("..");
    let corpus = fuzz.join("corpus");
    let mut counts = [0usize; 5];

    let mut caps: Vec<PathBuf> = std::fs::read_dir(repo.join("tests/data/captures"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    caps.sort();
    for cap in &caps {
        let stem = cap
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let bytes = std::fs::read(cap)?;
        let Ok(recs) = records(&bytes) else { continue };
        for (i, r) in recs.enumerate() {
            let Ok(r) = r else { continue };
            let Some(d) = extract(r.frame) else { continue };
            let udp = d.transport == Encap::Udp;
            let name = format!("{stem}-{i}");
            // data_rx: [socket, udp, after_ms] + bytes, in the shape `arbitrary` reads.
            let mut dr = vec![1u8, u8::from(udp), 1];
            dr.extend_from_slice(d.payload);
            write(&corpus.join("data_rx"), &name, &dr)?;
            counts[0] += 1;
            let v3 = stem.starts_with("v3");
            if udp && matches!(classify_udp(d.payload), UdpClass::Control) {
                let mut cm = vec![u8::from(v3)];
                cm.extend_from_slice(d.payload);
                write(&corpus.join("control_message"), &name, &cm)?;
                counts[1] += 1;
            } else if !udp && d.payload.get(..4) == Some(&[0, 0, 0, 0]) {
                let mut cm = vec![3u8];
                cm.extend_from_slice(d.payload);
                write(&corpus.join("control_message"), &name, &cm)?;
                counts[1] += 1;
            }
            if udp && !v3 {
                if let Ok((_, off)) = V2DataHeader::parse(d.payload) {
                    if let Some(ppp) = d.payload.get(off..) {
                        write(&corpus.join("ppp"), &name, ppp)?;
                        counts[2] += 1;
                    }
                }
            }
        }
    }

    // config: every ```toml block of docs/config.md.
    let doc = std::fs::read_to_string(repo.join("docs/config.md"))?;
    for (i, block) in doc.split("```toml").skip(1).enumerate() {
        let body = block.split("```").next().unwrap_or_default();
        write(&corpus.join("config"), &format!("doc-{i}"), body.as_bytes())?;
        counts[3] += 1;
    }

    // api_request: one line per command family.
    let lines = [
        r#"{"seq":1,"cmd":"tunnel_create","attrs":{"conn_id":1,"peer_conn_id":2,"proto_version":3,"encap_type":0,"ip_saddr":"192.0.2.1","ip_daddr":"192.0.2.2","udp_sport":5000,"udp_dport":5000}}"#,
        r#"{"seq":2,"cmd":"session_create","attrs":{"conn_id":1,"session_id":1,"peer_session_id":2,"pw_type":5,"cookie":"0011223344556677","l2spec_type":1}}"#,
        r#"{"seq":3,"cmd":"session_modify","attrs":{"conn_id":1,"session_id":1,"recv_seq":1,"send_seq":1,"reorder_timeout":100}}"#,
        r#"{"seq":4,"cmd":"tunnel_get","dump":true}"#,
        r#"{"seq":5,"cmd":"session_delete","attrs":{"conn_id":1,"session_id":1}}"#,
    ];
    for (i, l) in lines.iter().enumerate() {
        write(
            &corpus.join("api_request"),
            &format!("line-{i}"),
            l.as_bytes(),
        )?;
        counts[4] += 1;
    }
    println!(
        "seed corpora in {}: data_rx {}, control_message {}, ppp {}, config {}, api_request {}",
        corpus.display(),
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        counts[4]
    );
    Ok(())
}
