//! Messages produced by [`MessageBuilder`] for every message type (v2 over UDP, v3 over UDP
//! and IP, with hidden AVPs and message digests) are written to a pcap and decoded by
//! tshark: every frame must decode as the intended message type, with no malformed-packet or
//! error-level expert info. Skipped with a note if tshark is not installed.

use std::net::{IpAddr, SocketAddr};
use std::process::Command;

use ul2tp_wire::avp::*;
use ul2tp_wire::control::{self, Encap, Version};
use ul2tp_wire::digest::{self, challenge_response, Nonces};
use ul2tp_wire::message::{Message, MessageBuilder};
use ul2tp_wire::pcap::PcapWriter;

fn rv() -> Vec<u8> {
    (0u8..16).collect()
}

fn v2(t: MessageType, tid: u32, sid: u16) -> MessageBuilder {
    MessageBuilder::new(Version::V2, Encap::Udp, tid, sid, t).secret(b"xyzzy")
}

fn v3(t: MessageType, encap: Encap) -> MessageBuilder {
    MessageBuilder::new(Version::V3, encap, 0x0102_0304, 0, t).secret(b"xyzzy")
}

type R = Result<Vec<u8>, Box<dyn std::error::Error>>;
type Sent = Vec<(Vec<u8>, bool)>;

fn v2_messages() -> Result<Vec<Vec<u8>>, Box<dyn std::error::Error>> {
    let rc = |result, error: Option<ErrorCode>, msg: Option<&str>| {
        AvpValue::ResultCode(ResultCode {
            result,
            error,
            message: msg.map(|m| m.as_bytes().to_vec()),
        })
    };
    let caps = |b: MessageBuilder| -> Result<MessageBuilder, Box<dyn std::error::Error>> {
        Ok(b.avp(AvpValue::ProtocolVersion {
            version: 1,
            revision: 0,
        })?
        .avp(AvpValue::HostName(b"ul2tp".to_vec()))?
        .avp(AvpValue::FramingCapabilities(FRAMING_SYNC | FRAMING_ASYNC))?
        .avp(AvpValue::BearerCapabilities(BEARER_ANALOG))?
        .avp(AvpValue::FirmwareRevision(0x0100))?
        .avp(AvpValue::VendorName(b"ul2tp project".to_vec()))?
        .avp(AvpValue::ReceiveWindowSize(16))?)
    };
    let ch: Vec<u8> = (0u8..16).collect();
    let mut v = Vec::new();
    let sccrq: R = Ok(caps(v2(MessageType::Sccrq, 0, 0))?
        .avp(AvpValue::AssignedTunnelId(0x1234))?
        .avp(AvpValue::Challenge(ch.clone()))?
        .avp(AvpValue::TieBreaker([1, 2, 3, 4, 5, 6, 7, 8]))?
        .finish()?);
    v.push(sccrq?);
    v.push(
        caps(v2(MessageType::Sccrp, 0x1234, 0))?
            .avp(AvpValue::RandomVector(rv()))?
            .avp_hidden(AvpValue::AssignedTunnelId(0x4321), &[0xaa; 13])?
            .avp(AvpValue::Challenge(ch.clone()))?
            .avp(AvpValue::ChallengeResponse(challenge_response(
                MessageType::Sccrp,
                b"xyzzy",
                &ch,
            )))?
            .finish()?,
    );
    v.push(
        v2(MessageType::Scccn, 0x4321, 0)
            .avp(AvpValue::ChallengeResponse(challenge_response(
                MessageType::Scccn,
                b"xyzzy",
                &ch,
            )))?
            .finish()?,
    );
    v.push(v2(MessageType::Hello, 0x4321, 0).finish()?);
    v.push(
        v2(MessageType::Icrq, 0x4321, 0)
            .avp(AvpValue::AssignedSessionId(7))?
            .avp(AvpValue::CallSerialNumber(99))?
            .avp(AvpValue::BearerType(BEARER_DIGITAL))?
            .avp(AvpValue::PhysicalChannelId(3))?
            .avp(AvpValue::CallingNumber(b"5551234".to_vec()))?
            .avp(AvpValue::CalledNumber(b"5556789".to_vec()))?
            .avp(AvpValue::SubAddress(b"12".to_vec()))?
            .finish()?,
    );
    v.push(
        v2(MessageType::Icrp, 0x1234, 7)
            .avp(AvpValue::AssignedSessionId(8))?
            .finish()?,
    );
    v.push(
        v2(MessageType::Iccn, 0x4321, 8)
            .avp(AvpValue::TxConnectSpeed(100_000_000))?
            .avp(AvpValue::FramingType(FRAMING_SYNC))?
            .avp(AvpValue::RxConnectSpeed(10_000_000))?
            .avp(AvpValue::InitialReceivedLcpConfreq(vec![1, 4, 5, 0xdc]))?
            .avp(AvpValue::LastSentLcpConfreq(vec![1, 4, 5, 0xdc]))?
            .avp(AvpValue::LastReceivedLcpConfreq(vec![1, 4, 5, 0xdc]))?
            .avp(AvpValue::RandomVector(rv()))?
            .avp(AvpValue::ProxyAuthenType(ProxyAuthenType::Chap))?
            .avp_hidden(AvpValue::ProxyAuthenName(b"user".to_vec()), &[])?
            .avp(AvpValue::ProxyAuthenChallenge(vec![9; 16]))?
            .avp(AvpValue::ProxyAuthenId(5))?
            .avp_hidden(AvpValue::ProxyAuthenResponse(vec![7; 16]), &[1, 2, 3])?
            .avp(AvpValue::PrivateGroupId(b"grp".to_vec()))?
            .avp(AvpValue::SequencingRequired)?
            .finish()?,
    );
    v.push(
        v2(MessageType::Ocrq, 0x4321, 0)
            .avp(AvpValue::AssignedSessionId(9))?
            .avp(AvpValue::CallSerialNumber(100))?
            .avp(AvpValue::MinimumBps(9600))?
            .avp(AvpValue::MaximumBps(64000))?
            .avp(AvpValue::BearerType(BEARER_ANALOG))?
            .avp(AvpValue::FramingType(FRAMING_ASYNC))?
            .avp(AvpValue::CalledNumber(b"911".to_vec()))?
            .finish()?,
    );
    v.push(
        v2(MessageType::Ocrp, 0x1234, 9)
            .avp(AvpValue::AssignedSessionId(10))?
            .avp(AvpValue::PhysicalChannelId(1))?
            .finish()?,
    );
    v.push(
        v2(MessageType::Occn, 0x4321, 10)
            .avp(AvpValue::TxConnectSpeed(64000))?
            .avp(AvpValue::FramingType(FRAMING_ASYNC))?
            .finish()?,
    );
    v.push(
        v2(MessageType::Wen, 0x4321, 10)
            .avp(AvpValue::CallErrors(CallErrors {
                crc_errors: 1,
                framing_errors: 2,
                hardware_overruns: 3,
                buffer_overruns: 4,
                timeout_errors: 5,
                alignment_errors: 6,
                compact: false,
            }))?
            .finish()?,
    );
    v.push(
        v2(MessageType::Sli, 0x4321, 10)
            .avp(AvpValue::Accm {
                send_accm: 0,
                receive_accm: 0xffff_ffff,
            })?
            .finish()?,
    );
    v.push(
        v2(MessageType::Cdn, 0x4321, 10)
            .avp(rc(3, None, None))?
            .avp(AvpValue::AssignedSessionId(9))?
            .avp(AvpValue::Q931CauseCode(Q931Cause {
                cause_code: 16,
                cause_msg: 0x45,
                advisory: b"normal".to_vec(),
            }))?
            .finish()?,
    );
    v.push(
        v2(MessageType::StopCcn, 0x4321, 0)
            .avp(AvpValue::AssignedTunnelId(0x1234))?
            .avp(rc(
                2,
                Some(ErrorCode::UnknownMandatoryAvp),
                Some("unknown AVP 200"),
            ))?
            .finish()?,
    );
    v.push(control::zlb(Version::V2, Encap::Udp, 0x4321, 0, 5, 6)?);
    Ok(v)
}

/// v3 messages from LCCE A (nonce 0x11..) or B (nonce 0x22..): (bytes, sent by B).
fn v3_messages(encap: Encap) -> Result<Sent, Box<dyn std::error::Error>> {
    let n1 = [0x11u8; 16];
    let n2 = [0x22u8; 16];
    let session = |b: MessageBuilder| -> Result<MessageBuilder, Box<dyn std::error::Error>> {
        Ok(b.avp(AvpValue::LocalSessionId(0x1001))?
            .avp(AvpValue::RemoteSessionId(0x2001))?)
    };
    let full = |b: MessageBuilder| -> Result<MessageBuilder, Box<dyn std::error::Error>> {
        Ok(b.avp(AvpValue::L2SpecificSublayer(L2SpecType::Default))?
            .avp(AvpValue::DataSequencing(DataSequencing::All))?
            .avp(AvpValue::TxConnectSpeedV3(10_000_000_000))?
            .avp(AvpValue::RxConnectSpeedV3(1_000_000_000))?
            .avp(AvpValue::CircuitStatus(CIRCUIT_ACTIVE | CIRCUIT_NEW))?)
    };
    let d = |t| v3(t, encap).digest(DigestType::HmacMd5);
    let mut v: Vec<(Vec<u8>, Option<Nonces<'_>>)> = Vec::new();
    let b_to_a = Some(Nonces {
        sender: &n2,
        receiver: &n1,
    });
    let sccrq = v3(MessageType::Sccrq, encap)
        .digest(DigestType::HmacSha1)?
        .avp(AvpValue::HostName(b"lcce-a".to_vec()))?
        .avp(AvpValue::RouterId(0xc000_0201))?
        .avp(AvpValue::AssignedConnectionId(0x0a0b_0c0d))?
        .avp(AvpValue::PseudowireCapabilities(vec![
            PwType::Ethernet,
            PwType::EthernetVlan,
            PwType::Ppp,
        ]))?
        .avp(AvpValue::CtrlMsgAuthNonce(n1.to_vec()))?
        .avp(AvpValue::TieBreaker([9; 8]))?
        .avp(AvpValue::VendorName(b"ul2tp".to_vec()))?
        .avp(AvpValue::ReceiveWindowSize(8))?
        .avp(AvpValue::PreferredLanguage(b"en".to_vec()))?
        .finish()?;
    v.push((sccrq, None));
    let a_to_b = Some(Nonces {
        sender: &n1,
        receiver: &n2,
    });
    v.push((
        d(MessageType::Sccrp)?
            .avp(AvpValue::HostName(b"lcce-b".to_vec()))?
            .avp(AvpValue::RouterId(0xc000_0202))?
            .avp(AvpValue::AssignedConnectionId(0x0102_0304))?
            .avp(AvpValue::PseudowireCapabilities(vec![PwType::Ethernet]))?
            .avp(AvpValue::CtrlMsgAuthNonce(n2.to_vec()))?
            .finish()?,
        b_to_a,
    ));
    v.push((d(MessageType::Scccn)?.finish()?, a_to_b));
    v.push((d(MessageType::Hello)?.finish()?, a_to_b));
    v.push((d(MessageType::Ack)?.finish()?, b_to_a));
    v.push((
        full(
            session(d(MessageType::Icrq)?)?
                .avp(AvpValue::CallSerialNumber(1))?
                .avp(AvpValue::PseudowireType(PwType::Ethernet))?
                .avp(AvpValue::RemoteEndId(b"pw42".to_vec()))?
                .avp(AvpValue::AssignedCookie(vec![
                    0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                ]))?
                .avp(AvpValue::TieBreaker([3; 8]))?
                .avp(AvpValue::PhysicalChannelId(4))?,
        )?
        .finish()?,
        a_to_b,
    ));
    v.push((
        full(session(d(MessageType::Icrp)?)?.avp(AvpValue::AssignedCookie(vec![1, 2, 3, 4]))?)?
            .finish()?,
        b_to_a,
    ));
    v.push((full(session(d(MessageType::Iccn)?)?)?.finish()?, a_to_b));
    v.push((
        session(d(MessageType::Ocrq)?)?
            .avp(AvpValue::CallSerialNumber(2))?
            .avp(AvpValue::PseudowireType(PwType::EthernetVlan))?
            .avp(AvpValue::RemoteEndId(b"pw-7".to_vec()))?
            .avp(AvpValue::CircuitStatus(CIRCUIT_NEW))?
            .finish()?,
        a_to_b,
    ));
    v.push((
        session(d(MessageType::Ocrp)?)?
            .avp(AvpValue::CircuitStatus(CIRCUIT_ACTIVE))?
            .finish()?,
        b_to_a,
    ));
    v.push((session(d(MessageType::Occn)?)?.finish()?, a_to_b));
    v.push((
        session(d(MessageType::Sli)?)?
            .avp(AvpValue::CircuitStatus(0))?
            .finish()?,
        a_to_b,
    ));
    v.push((
        session(d(MessageType::Wen)?)?
            .avp(AvpValue::CallErrors(CallErrors {
                crc_errors: 0,
                framing_errors: 0,
                hardware_overruns: 1,
                buffer_overruns: 2,
                timeout_errors: 3,
                alignment_errors: 4,
                compact: false,
            }))?
            .finish()?,
        a_to_b,
    ));
    v.push((
        session(d(MessageType::Cdn)?)?
            .avp(AvpValue::ResultCode(ResultCode {
                result: CdnResult::UnsupportedPwType.get(),
                error: Some(ErrorCode::NoError),
                message: None,
            }))?
            .finish()?,
        a_to_b,
    ));
    v.push((
        d(MessageType::StopCcn)?
            .avp(AvpValue::AssignedConnectionId(0x0a0b_0c0d))?
            .avp(AvpValue::ResultCode(ResultCode {
                result: StopCcnResult::GeneralRequest.get(),
                error: None,
                message: None,
            }))?
            .finish()?,
        a_to_b,
    ));
    // Fill Ns/Nr, then sign; check each verifies and parses.
    let mut out = Vec::new();
    for (i, (mut m, nonces)) in v.into_iter().enumerate() {
        let off = encap.prefix_len();
        control::set_ns_nr(&mut m[off..], i as u16, 1)?;
        digest::sign_message(&mut m[off..], b"xyzzy", nonces)?;
        digest::verify_message(&m[off..], b"xyzzy", nonces)?;
        Message::parse_encap(&m, Version::V3, encap, Some(b"xyzzy"))?;
        let from_b = nonces.is_some_and(|n| n.sender == n2);
        out.push((m, from_b));
    }
    Ok(out)
}

fn tshark_fields(path: &std::path::Path, extra: &[&str], field: &str) -> Option<Vec<String>> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(extra)
        .args(["-T", "fields", "-e", field])
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}

#[test]
fn tshark_decodes_built_messages() -> Result<(), Box<dyn std::error::Error>> {
    let lac: SocketAddr = "192.0.2.1:1701".parse()?;
    let lns: SocketAddr = "192.0.2.2:1701".parse()?;
    let mut w = PcapWriter::new();
    let mut want: Vec<String> = Vec::new();
    let mut t = 1_000_000u64;
    let mut note =
        |m: &[u8], version: Version, encap: Encap| -> Result<(), Box<dyn std::error::Error>> {
            let msg = Message::parse_encap(m, version, encap, Some(b"xyzzy"))?;
            want.push(
                msg.message_type
                    .map_or(String::new(), |t| t.get().to_string()),
            );
            Ok(())
        };
    for m in v2_messages()? {
        note(&m, Version::V2, Encap::Udp)?;
        w.udp(t, lac, lns, &m);
        t += 1000;
    }
    for (m, from_b) in v3_messages(Encap::Udp)? {
        note(&m, Version::V3, Encap::Udp)?;
        if from_b {
            w.udp(t, lns, lac, &m);
        } else {
            w.udp(t, lac, lns, &m);
        }
        t += 1000;
    }
    let (a, b): (IpAddr, IpAddr) = ("fd00::1".parse()?, "fd00::2".parse()?);
    for (m, from_b) in v3_messages(Encap::Ip)? {
        note(&m, Version::V3, Encap::Ip)?;
        if from_b {
            w.l2tp_ip(t, b, a, &m);
        } else {
            w.l2tp_ip(t, a, b, &m);
        }
        t += 1000;
    }
    let path = std::env::temp_dir().join(format!("ul2tp-wire-built-{}.pcap", std::process::id()));
    std::fs::write(&path, w.as_bytes())?;

    // tshark is a test dependency (.ci/run installs it): without it the test fails.
    let types = tshark_fields(&path, &[], "l2tp.avp.message_type")
        .expect("tshark on PATH (apt-get install tshark, or run .ci/run)");
    assert_eq!(types, want);
    let bad = tshark_fields(
        &path,
        &["-Y", "_ws.malformed || _ws.expert.severity >= \"error\""],
        "frame.number",
    )
    .unwrap_or_default();
    // Wireshark checks v3 Message Digests (with the nonces of both directions) when given the
    // secret: with the right one no expert info at all, with a wrong one "Incorrect Digest".
    let right = tshark_fields(
        &path,
        &["-o", "l2tp.shared_secret:xyzzy"],
        "_ws.expert.message",
    )
    .unwrap_or_default();
    let wrong = tshark_fields(
        &path,
        &["-o", "l2tp.shared_secret:wrong"],
        "_ws.expert.message",
    )
    .unwrap_or_default();
    // Also look at the verbose decode for any "Malformed" text.
    let verbose = Command::new("tshark")
        .arg("-r")
        .arg(&path)
        .arg("-V")
        .output()?;
    let text = String::from_utf8_lossy(&verbose.stdout);
    if std::env::var_os("UL2TP_KEEP_PCAP").is_none() {
        let _ = std::fs::remove_file(&path);
    }
    assert!(bad.is_empty(), "tshark flags frames {bad:?}");
    assert!(
        !text.contains("Malformed"),
        "tshark reports a malformed packet"
    );
    assert!(
        right.iter().all(|l| l.is_empty()),
        "tshark expert info with the right secret: {right:?}"
    );
    let incorrect = wrong
        .iter()
        .filter(|l| l.contains("Incorrect Digest"))
        .count();
    assert_eq!(
        incorrect, 30,
        "every v3 message must fail with a wrong secret"
    );
    let hidden = text.matches("Hidden: True").count();
    assert_eq!(hidden, 3, "hidden AVPs expected in the decode");
    Ok(())
}
