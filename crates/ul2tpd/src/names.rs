//! Names for the devices the daemon creates without an explicit name (`l2tpethN`, `pppN`).
//!
//! The kernel resolves a template such as `l2tpeth%d` by scanning every device of the
//! namespace (`__dev_alloc_name`: a `sscanf` and an `snprintf` per device), so with
//! thousands of sessions that scan was most of the cost of creating one, growing with their
//! number; it also fails beyond 32,768 devices of one template (its bitmap is one page). The
//! daemon instead keeps the numbers of its own devices and asks for the lowest free one by
//! its full name: O(log n) whatever the number of devices. The result is the kernel's
//! (the lowest number no device has) as long as the daemon is the only one creating such
//! names; a number some other device holds is skipped (and kept as used).
//!
//! A number is free again once its device is gone: the reaper (`reaper.rs`) releases it after
//! deleting the device, the create paths when they drop a device they just created.

use std::collections::BTreeSet;
use std::io;
use std::sync::Mutex;

/// Give up after this many names taken by others in a row.
const MAX_SKIPS: usize = 4096;

/// The numbers of one name prefix.
#[derive(Debug)]
pub(crate) struct Names {
    prefix: &'static str,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Every number from here on is free.
    next: u32,
    /// Free numbers below `next`.
    free: BTreeSet<u32>,
}

impl Names {
    /// Names `{prefix}{N}`.
    pub(crate) fn new(prefix: &'static str) -> Names {
        Names {
            prefix,
            inner: Mutex::default(),
        }
    }

    fn take(&self) -> u32 {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match g.free.pop_first() {
            Some(n) => n,
            None => {
                let n = g.next;
                g.next = g.next.saturating_add(1);
                n
            }
        }
    }

    fn release(&self, n: u32) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if n >= g.next {
            return;
        }
        g.free.insert(n);
        // Keep the set small: free numbers at the top lower `next` instead.
        while let Some(top) = g.next.checked_sub(1) {
            if !g.free.remove(&top) {
                break;
            }
            g.next = top;
        }
    }

    /// The number of `name` if it is one of ours (`{prefix}{N}`, N in canonical decimal).
    fn number(&self, name: &str) -> Option<u32> {
        let digits = name.strip_prefix(self.prefix)?;
        let n: u32 = digits.parse().ok()?;
        (n.to_string() == digits).then_some(n)
    }

    /// Mark `name`'s number free (its device is gone). Other names are ignored.
    pub(crate) fn release_name(&self, name: &str) {
        if let Some(n) = self.number(name) {
            self.release(n);
        }
    }

    /// Create a device under the lowest free name with `create`, which must fail with
    /// `AlreadyExists` when the name is taken; such names are skipped.
    pub(crate) fn create<T>(&self, mut create: impl FnMut(&str) -> io::Result<T>) -> io::Result<T> {
        for _ in 0..MAX_SKIPS {
            let n = self.take();
            match create(&format!("{}{n}", self.prefix)) {
                Ok(t) => return Ok(t),
                // Some other device has the name: keep it as used.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    self.release(n);
                    return Err(e);
                }
            }
        }
        Err(io::Error::other(format!(
            "no free {}N name after {MAX_SKIPS} tries",
            self.prefix
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn ok(name: &str) -> io::Result<String> {
        Ok(name.to_string())
    }

    #[test]
    fn lowest_free_number_first() {
        let n = Names::new("l2tpeth");
        let a: Vec<String> = (0..4).map(|_| n.create(ok).unwrap()).collect();
        assert_eq!(a, ["l2tpeth0", "l2tpeth1", "l2tpeth2", "l2tpeth3"]);
        n.release_name("l2tpeth1");
        n.release_name("l2tpeth3");
        assert_eq!(n.create(ok).unwrap(), "l2tpeth1");
        assert_eq!(n.create(ok).unwrap(), "l2tpeth3");
        assert_eq!(n.create(ok).unwrap(), "l2tpeth4");
        // Not ours, or not canonical: ignored.
        for other in [
            "eth0",
            "l2tpeth",
            "l2tpeth01",
            "l2tpeth+1",
            "l2tpeth99",
            "ppp0",
        ] {
            n.release_name(other);
        }
        assert_eq!(n.create(ok).unwrap(), "l2tpeth5");
        for i in 0..6 {
            n.release_name(&format!("l2tpeth{i}"));
        }
        let g = n.inner.lock().unwrap();
        assert_eq!(
            (g.next, g.free.len()),
            (0, 0),
            "all free: back to the start"
        );
    }

    #[test]
    fn names_taken_by_others_are_skipped_errors_release() {
        let n = Names::new("ppp");
        let taken: HashSet<&str> = ["ppp0", "ppp2"].into();
        let make = |name: &str| {
            if taken.contains(name) {
                Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists"))
            } else {
                ok(name)
            }
        };
        assert_eq!(n.create(make).unwrap(), "ppp1");
        assert_eq!(n.create(make).unwrap(), "ppp3");
        let e = n
            .create(|_| Err::<String, _>(io::Error::from(io::ErrorKind::PermissionDenied)))
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(
            n.create(make).unwrap(),
            "ppp4",
            "the failed number is free again"
        );
        let e = n
            .create(|_| Err::<String, _>(io::Error::from(io::ErrorKind::AlreadyExists)))
            .unwrap_err();
        assert!(e.to_string().contains("no free pppN name"), "{e}");
    }
}
