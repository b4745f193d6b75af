//! `ul2tp show lac [ PROFILE ]`: the state of the daemon's configured calls (`[[lac]]`
//! profiles, `lac_get`), as text or JSON.

use ul2tp_api::Attrs;

/// The LNS of an entry as `ADDR port PORT`.
fn lns(a: &Attrs) -> Option<String> {
    let addr = a
        .ip_daddr
        .map(|v| v.to_string())
        .or_else(|| a.ip6_daddr.map(|v| v.to_string()))?;
    if a.encap_type == Some(ul2tp_api::encap_type::IP) {
        return Some(format!("{addr} over IP"));
    }
    Some(format!("{addr} port {}", a.udp_dport.unwrap_or(1701)))
}

/// Render the calls (JSON: one object per call, keys in alphabetical order).
pub fn show(entries: &[Attrs], json: bool, pretty: bool) -> String {
    if json {
        let list: Vec<serde_json::Value> = entries
            .iter()
            .map(|a| {
                let mut m = serde_json::Map::new();
                let mut put = |k: &str, v: serde_json::Value| {
                    m.insert(k.to_string(), v);
                };
                put("profile", a.profile.clone().unwrap_or_default().into());
                put("state", a.call_state.clone().unwrap_or_default().into());
                if let Some(ip) = a
                    .ip_daddr
                    .map(|v| v.to_string())
                    .or(a.ip6_daddr.map(|v| v.to_string()))
                {
                    put("lns", ip.into());
                    if a.encap_type == Some(ul2tp_api::encap_type::IP) {
                        put("encap", "ip".into());
                    } else {
                        put("udp_dport", a.udp_dport.unwrap_or(1701).into());
                    }
                }
                if let Some(t) = a.conn_id {
                    put("tunnel_id", t.into());
                }
                if let Some(s) = a.session_id {
                    put("session_id", s.into());
                }
                if let Some(c) = &a.call_cause {
                    put("cause", c.clone().into());
                }
                serde_json::Value::Object(m)
            })
            .collect();
        let v = serde_json::Value::Array(list);
        let mut s = if pretty {
            serde_json::to_string_pretty(&v).unwrap_or_default()
        } else {
            serde_json::to_string(&v).unwrap_or_default()
        };
        s.push('\n');
        return s;
    }
    let mut out = String::new();
    for a in entries {
        out.push_str(&format!(
            "Call {}: {}\n",
            a.profile.as_deref().unwrap_or_default(),
            a.call_state.as_deref().unwrap_or("idle")
        ));
        if let Some(l) = lns(a) {
            out.push_str(&format!("  LNS {l}"));
            if let Some(t) = a.conn_id {
                out.push_str(&format!(", tunnel {t}"));
            }
            if let Some(s) = a.session_id {
                out.push_str(&format!(", session {s}"));
            }
            out.push('\n');
        }
        if let Some(c) = &a.call_cause {
            out.push_str(&format!("  last failure: {c}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json() {
        let up = Attrs {
            profile: Some("isp".into()),
            call_state: Some("up".into()),
            ip_daddr: Some("192.0.2.2".parse().unwrap()),
            udp_dport: Some(1701),
            conn_id: Some(3071),
            session_id: Some(5512),
            ..Attrs::default()
        };
        let waiting = Attrs {
            profile: Some("backup".into()),
            call_state: Some("waiting".into()),
            call_cause: Some("control connection: no answer".into()),
            ..Attrs::default()
        };
        assert_eq!(
            show(&[up.clone(), waiting.clone()], false, false),
            "Call isp: up\n  LNS 192.0.2.2 port 1701, tunnel 3071, session 5512\nCall backup: waiting\n  last failure: control connection: no answer\n"
        );
        assert_eq!(
            show(&[up, waiting], true, false),
            "[{\"lns\":\"192.0.2.2\",\"profile\":\"isp\",\"session_id\":5512,\"state\":\"up\",\"tunnel_id\":3071,\"udp_dport\":1701},{\"cause\":\"control connection: no answer\",\"profile\":\"backup\",\"state\":\"waiting\"}]\n"
        );
    }
}
