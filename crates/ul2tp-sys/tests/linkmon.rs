//! The rtnetlink link monitor inside a private network namespace: a TAP brought up, its
//! carrier switched off and on (`Tap::set_carrier`), brought down and deleted, each change
//! seen as a link event with the right flags; and the `RTM_GETLINK` dump agreeing with
//! `SIOCGIFFLAGS` ([`link::is_up`]) about TAPs up and down.

use std::time::Duration;

use ul2tp_sys::link;
use ul2tp_sys::linkmon::{dump, LinkEvent, LinkMonitor};
use ul2tp_sys::netns::block_on_in_new_netns;
use ul2tp_sys::tap::{Tap, L2TPETH_TEMPLATE};

/// Read events until one for `ifindex` satisfies `want`.
async fn until(mon: &LinkMonitor, ifindex: u32, want: impl Fn(&LinkEvent) -> bool) -> LinkEvent {
    let mut buf = vec![0u8; 32 * 1024];
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            for e in mon.recv(&mut buf).await.expect("monitor") {
                if e.ifindex == ifindex && want(&e) {
                    return e;
                }
            }
        }
    })
    .await
    .expect("timed out waiting for a link event")
}

#[test]
fn tap_up_carrier_down_and_gone() {
    block_on_in_new_netns(|| async {
        let mon = LinkMonitor::open().unwrap();
        let tap = Tap::create(None, L2TPETH_TEMPLATE).unwrap();
        let (idx, name) = (tap.ifindex(), tap.name().to_string());
        tap.set_up(true).unwrap();
        let e = until(&mon, idx, |e| e.up && e.lower_up).await;
        assert_eq!(e.name.as_deref(), Some(name.as_str()));
        tap.set_carrier(false).unwrap();
        until(&mon, idx, |e| e.up && !e.lower_up).await;
        tap.set_carrier(true).unwrap();
        until(&mon, idx, |e| e.up && e.lower_up).await;
        tap.set_up(false).unwrap();
        until(&mon, idx, |e| !e.up && !e.deleted).await;
        drop(tap);
        until(&mon, idx, |e| e.deleted).await;
    })
    .unwrap();
}

/// The dump's entry for `ifindex`, if listed.
fn dumped(ifindex: u32) -> Option<LinkEvent> {
    dump()
        .expect("dump")
        .into_iter()
        .find(|e| e.ifindex == ifindex)
}

#[test]
fn dump_lists_taps_up_and_down_like_siocgifflags() {
    block_on_in_new_netns(|| async {
        let all = dump().unwrap();
        assert!(
            all.iter().any(|e| e.name.as_deref() == Some("lo")),
            "lo in {all:?}"
        );
        let taps: Vec<Tap> = (0..3)
            .map(|_| Tap::create(None, L2TPETH_TEMPLATE).unwrap())
            .collect();
        taps[1].set_up(true).unwrap();
        for t in &taps {
            let e = dumped(t.ifindex()).expect("TAP listed");
            assert_eq!(e.name.as_deref(), Some(t.name()));
            assert_eq!(e.up, link::is_up(t.name()).unwrap(), "{}", t.name());
            assert!(!e.deleted);
        }
        assert!(dumped(taps[1].ifindex()).unwrap().up);
        assert!(!dumped(taps[0].ifindex()).unwrap().up);
        taps[1].set_up(false).unwrap();
        taps[2].set_up(true).unwrap();
        assert!(!dumped(taps[1].ifindex()).unwrap().up);
        assert!(dumped(taps[2].ifindex()).unwrap().up);
        let gone = taps[0].ifindex();
        drop(taps);
        assert_eq!(dumped(gone), None, "a deleted TAP is not listed");
    })
    .unwrap();
}

#[test]
fn dump_spans_several_datagrams() {
    block_on_in_new_netns(|| async {
        // A few hundred devices do not fit one reply datagram.
        let taps: Vec<Tap> = (0..300)
            .map(|_| Tap::create(None, L2TPETH_TEMPLATE).unwrap())
            .collect();
        for t in taps.iter().step_by(2) {
            t.set_up(true).unwrap();
        }
        let all = dump().unwrap();
        for (i, t) in taps.iter().enumerate() {
            let e = all
                .iter()
                .find(|e| e.ifindex == t.ifindex())
                .expect("every TAP listed");
            assert_eq!(e.up, i % 2 == 0, "{}", t.name());
        }
    })
    .unwrap();
}
