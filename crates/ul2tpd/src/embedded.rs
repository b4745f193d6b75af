//! The daemon inside an application's process ("in process" use of the tunnel and session
//! socket APIs).

use std::io;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use crate::datapath::DataPathConfig;
use crate::server::{serve_connection, Privilege};
use crate::Daemon;

/// A private ul2tpd: request handlers and data path on a runtime of its own, in the network
/// namespace of the thread that starts it. Dropping it deletes every tunnel it created.
#[derive(Debug)]
pub struct Embedded {
    daemon: Arc<Daemon>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Embedded {
    /// Start with `workers` runtime threads (1 or more) and the default data-path settings,
    /// with as many data-path workers (TAP queues of each Ethernet pseudowire).
    pub fn start(workers: usize) -> io::Result<Embedded> {
        Self::start_with(
            workers,
            DataPathConfig {
                workers,
                ..DataPathConfig::default()
            },
        )
    }

    /// Start with `workers` runtime threads and these data-path settings (independent of
    /// any other daemon in the process; `datapath.workers` is the number of TAP queues of
    /// each Ethernet pseudowire).
    pub fn start_with(workers: usize, datapath: DataPathConfig) -> io::Result<Embedded> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .enable_all()
            .thread_name("ul2tp-embedded")
            .build()?;
        let daemon = rt.block_on(async { Daemon::new() });
        daemon.set_datapath(datapath);
        Ok(Embedded {
            daemon,
            rt: Some(rt),
        })
    }

    /// The data-path settings of this daemon.
    pub fn datapath(&self) -> DataPathConfig {
        self.daemon.datapath()
    }

    /// A new connection to the embedded daemon, with full privilege (it is our own process):
    /// wrap it with `ul2tp::Client::from_stream`.
    pub fn connect(&self) -> io::Result<UnixStream> {
        let (ours, theirs) = UnixStream::pair()?;
        ours.set_nonblocking(true)?;
        let daemon = self.daemon.clone();
        let rt = self
            .rt
            .as_ref()
            .ok_or_else(|| io::Error::other("embedded daemon stopped"))?;
        let _guard = rt.enter();
        let stream = tokio::net::UnixStream::from_std(ours)?;
        rt.spawn(async move {
            let _ = serve_connection(stream, daemon, Privilege::Admin).await;
        });
        Ok(theirs)
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.block_on(self.daemon.shutdown());
            rt.shutdown_timeout(std::time::Duration::from_secs(1));
        }
    }
}
