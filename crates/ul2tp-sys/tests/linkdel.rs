//! Deleting many devices in one rtnetlink batch, inside private network namespaces.

use ul2tp_sys::link;
use ul2tp_sys::linkdel::delete_links;
use ul2tp_sys::netns::block_on_in_new_netns;
use ul2tp_sys::tap::{Tap, Tun, L2TPETH_TEMPLATE, PPP_TEMPLATE};

/// More devices than one request datagram holds (256), TAPs and TUNs mixed, plus indexes
/// of devices already gone: exactly the named devices go, a bystander stays, and the
/// descriptors close afterwards without error.
#[test]
fn deletes_exactly_the_given_devices() {
    block_on_in_new_netns(|| async {
        let bystander = Tap::create(Some("keepme"), L2TPETH_TEMPLATE).unwrap();
        let taps: Vec<Tap> = (0..300)
            .map(|_| Tap::create(None, L2TPETH_TEMPLATE).unwrap())
            .collect();
        let tuns: Vec<Tun> = (0..20)
            .map(|_| Tun::create(None, PPP_TEMPLATE).unwrap())
            .collect();
        let gone = Tap::create(None, L2TPETH_TEMPLATE).unwrap();
        let gone_index = gone.ifindex();
        drop(gone);
        let mut idx: Vec<u32> = taps.iter().map(Tap::ifindex).collect();
        idx.extend(tuns.iter().map(Tun::ifindex));
        idx.push(gone_index);
        assert_eq!(delete_links(&idx).unwrap(), 320);
        for t in &taps {
            assert!(!link::exists(t.name()), "{} still exists", t.name());
        }
        for t in &tuns {
            assert!(!link::exists(t.name()), "{} still exists", t.name());
        }
        assert!(link::exists("keepme"), "the bystander was deleted");
        drop(taps);
        drop(tuns);
        // Names are free again.
        let again = Tap::create(None, L2TPETH_TEMPLATE).unwrap();
        assert_eq!(again.name(), "l2tpeth0");
        assert_eq!(delete_links(&[]).unwrap(), 0);
        drop(bystander);
    })
    .unwrap();
}
