//! Deleting pseudowire devices in batches, off the request path.
//!
//! Closing the last descriptor of a TAP / TUN device unregisters that device on its own, which
//! waits for the kernel's RCU grace periods: 10–16 ms a device, on whichever runtime worker
//! drops the descriptor (5,000 sessions took 45 s to go, with a worker blocked all along). The
//! store instead hands a deleted session's device to the reaper thread, which deletes all the
//! devices handed to it since its last round with one rtnetlink batch
//! ([`ul2tp_sys::linkdel::delete_links`]: one unregistration for the whole batch), then drops
//! the descriptors, which then costs nothing. While a batch is in the kernel, the next one
//! collects, so the batches grow with the delete rate and a single delete is not delayed.
//!
//! A device whose ifindex no longer names it (renamed, or moved to another namespace by the
//! administrator) is not deleted by index: its descriptor is just closed, as before.

use std::sync::{mpsc, Arc};

use crate::names::Names;

/// Most devices in one batch (the kernel holds the RTNL lock for a whole batch).
const BATCH: usize = 4096;

/// A device to delete: its ifindex and name when it was created, and whatever holds it open.
struct Doomed {
    ifindex: u32,
    name: String,
    _keep: Box<dyn Send>,
    /// Where the name's number is released once the device is gone.
    names: Option<Arc<Names>>,
}

/// Handle of the reaper thread (clones share the thread); the thread ends when the last
/// handle is dropped, after finishing the devices it was given.
#[derive(Debug, Clone)]
pub(crate) struct Reaper {
    tx: Option<mpsc::Sender<Msg>>,
}

/// What the reaper thread is sent.
enum Msg {
    Dev(Doomed),
    /// Answer once everything sent before is done.
    Flush(mpsc::Sender<()>),
}

impl Reaper {
    /// Start the reaper thread (in the calling thread's network namespace).
    pub(crate) fn start() -> Reaper {
        let (tx, rx) = mpsc::channel::<Msg>();
        let started = std::thread::Builder::new()
            .name("ul2tpd-reaper".into())
            .spawn(move || run(&rx))
            .map_err(|e| tracing::warn!("no reaper thread ({e}): devices go one at a time"))
            .is_ok();
        Reaper {
            tx: started.then_some(tx),
        }
    }

    /// Delete the device `name` (`ifindex`) that `keep` holds open, soon, then release its
    /// name in `names`. Without a reaper thread `keep` is dropped here (which deletes the
    /// device on its own).
    pub(crate) fn reap(
        &self,
        ifindex: u32,
        name: &str,
        keep: Box<dyn Send>,
        names: Option<Arc<Names>>,
    ) {
        let doomed = Doomed {
            ifindex,
            name: name.to_string(),
            _keep: keep,
            names,
        };
        match &self.tx {
            Some(tx) => {
                if let Err(mpsc::SendError(Msg::Dev(d))) = tx.send(Msg::Dev(doomed)) {
                    finish(vec![d]);
                }
            }
            None => finish(vec![doomed]),
        }
    }

    /// Wait until every device handed over so far is deleted (blocks: the daemon calls it
    /// when it stops, so that its exit does not close the rest one at a time).
    pub(crate) fn flush(&self) {
        let (done, wait) = mpsc::channel();
        if self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send(Msg::Flush(done)).is_ok())
        {
            let _ = wait.recv();
        }
    }
}

/// A device (`T`, e.g. a PPP unit's [`ul2tp_sys::tap::Tun`]) handed to the reaper when dropped.
pub(crate) struct Reaped<T: Send + 'static> {
    dev: Option<T>,
    ifindex: u32,
    name: String,
    reaper: Option<(Reaper, Arc<Names>)>,
}

impl<T: Send + 'static> Reaped<T> {
    /// `dev`, known as `name` / `ifindex`, to be deleted by the reaper and its name
    /// released in the `Names` (`None`: just dropped).
    pub(crate) fn new(
        dev: T,
        ifindex: u32,
        name: &str,
        reaper: Option<(Reaper, Arc<Names>)>,
    ) -> Self {
        Reaped {
            dev: Some(dev),
            ifindex,
            name: name.to_string(),
            reaper,
        }
    }
}

impl<T: Send + 'static> std::ops::Deref for Reaped<T> {
    type Target = T;
    fn deref(&self) -> &T {
        match &self.dev {
            Some(d) => d,
            // Only `drop` takes the device.
            None => unreachable!("a Reaped device is present until dropped"),
        }
    }
}

impl<T: Send + 'static> Drop for Reaped<T> {
    fn drop(&mut self) {
        if let (Some(dev), Some((r, names))) = (self.dev.take(), self.reaper.take()) {
            r.reap(self.ifindex, &self.name, Box::new(dev), Some(names));
        }
    }
}

fn run(rx: &mpsc::Receiver<Msg>) {
    while let Ok(first) = rx.recv() {
        let mut batch = Vec::new();
        let mut flushes = Vec::new();
        let mut next = Some(first);
        while let Some(m) = next.take() {
            match m {
                Msg::Dev(d) => batch.push(d),
                Msg::Flush(done) => flushes.push(done),
            }
            if batch.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        reap_batch(batch);
        for done in flushes {
            let _ = done.send(());
        }
    }
}

fn reap_batch(batch: Vec<Doomed>) {
    if batch.is_empty() {
        return;
    }
    // Only devices still known by their index under their name.
    let (by_index, rest): (Vec<Doomed>, Vec<Doomed>) = batch
        .into_iter()
        .partition(|d| ul2tp_sys::link::ifindex(&d.name).is_ok_and(|i| i == d.ifindex));
    let ifindexes: Vec<u32> = by_index.iter().map(|d| d.ifindex).collect();
    let batched = match ul2tp_sys::linkdel::delete_links(&ifindexes) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(
                "cannot delete {} devices in one batch ({e}): closing them one at a time",
                ifindexes.len()
            );
            0
        }
    };
    let closed = by_index.len() + rest.len() - batched;
    finish(by_index);
    finish(rest);
    // After the names are free (tests wait for this line).
    tracing::info!("reaped {batched} devices in one batch, {closed} one at a time");
}

/// Close the descriptors (cheap for deleted devices; the others are deleted here) and
/// release the names.
fn finish(batch: Vec<Doomed>) {
    for d in batch {
        let Doomed {
            name, _keep, names, ..
        } = d;
        drop(_keep);
        if let Some(n) = names {
            n.release_name(&name);
        }
    }
}
