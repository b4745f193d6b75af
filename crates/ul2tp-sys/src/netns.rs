//! Running code in a fresh network namespace, for tests and demos that need interfaces,
//! addresses or raw sockets without touching the host's namespace.
//!
//! A network namespace is a per-thread attribute: [`run_in_new_netns`] spawns a thread,
//! moves it alone into a new namespace with `unshare(CLONE_NEWNET)`, brings its loopback
//! up, runs the closure there, and joins. Everything created inside (devices, sockets,
//! addresses) disappears with the namespace once the thread and its descriptors are gone.

use std::io;
use std::os::unix::fs::MetadataExt;

use crate::link;

/// Move the calling thread into a new, empty network namespace (loopback brought up).
/// Needs `CAP_SYS_ADMIN`. Only call this on a thread you own: it never goes back.
pub fn unshare_current_thread() -> io::Result<()> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
    link::set_up("lo", true)
}

/// Inode of the calling thread's network namespace (`/proc/thread-self/ns/net`).
pub fn current_netns_inode() -> io::Result<u64> {
    Ok(std::fs::metadata("/proc/thread-self/ns/net")?.ino())
}

/// Run `f` on a new thread inside a new network namespace and return its result. A panic
/// inside `f` comes back as an error carrying the panic message.
pub fn run_in_new_netns<F, R>(f: F) -> io::Result<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let h = std::thread::Builder::new()
        .name("ul2tp-netns".into())
        .spawn(move || {
            unshare_current_thread()?;
            Ok::<R, io::Error>(f())
        })?;
    match h.join() {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic".into());
            Err(io::Error::other(format!(
                "panic in network namespace thread: {msg}"
            )))
        }
    }
}

/// Like [`run_in_new_netns`] with a single-threaded tokio runtime (I/O and time enabled)
/// inside the namespace, running the future built by `f`.
pub fn block_on_in_new_netns<F, Fut, R>(f: F) -> io::Result<R>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = R>,
    R: Send + 'static,
{
    run_in_new_netns(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok::<R, io::Error>(rt.block_on(f()))
    })?
}

/// The name under `/run/netns` of the network namespace this process is in, when that is
/// not the namespace of PID 1 (what `ip netns identify` prints). `None` in the initial
/// namespace, in an unnamed one, or when nothing can be read.
pub fn current_name() -> Option<String> {
    let id = |p: &std::path::Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let own = id(std::path::Path::new("/proc/self/ns/net"))?;
    if id(std::path::Path::new("/proc/1/ns/net")) == Some(own) {
        return None;
    }
    let mut names: Vec<String> = std::fs::read_dir("/run/netns")
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| id(&e.path()) == Some(own))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names.into_iter().next()
}
