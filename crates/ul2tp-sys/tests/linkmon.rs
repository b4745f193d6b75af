//! The rtnetlink link monitor inside a private network namespace: a TAP brought up, its
//! carrier switched off and on (`Tap::set_carrier`), brought down and deleted, each change
//! seen as a link event with the right flags.

use std::time::Duration;

use ul2tp_sys::linkmon::{LinkEvent, LinkMonitor};
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
