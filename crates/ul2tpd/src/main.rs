//! ul2tpd: the ul2tp daemon. It owns the L2TP data path (tunnel sockets, pseudowire devices),
//! serves the management API on a Unix socket and creates the tunnels and sessions declared in
//! an optional TOML configuration file.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;

use ul2tpd::{config, reload, server, Daemon};

/// Command line of ul2tpd.
#[derive(Debug, Parser)]
#[command(
    name = "ul2tpd",
    version,
    about = "Userspace L2TP daemon (the kernel L2TP subsystem in userspace)"
)]
struct Args {
    /// API socket path (default: $UL2TP_SOCKET, the config's [api] socket, or /run/ul2tp/ul2tpd.sock;
    /// /run/ul2tp/netns/NAME.sock in a network namespace named NAME).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// TOML configuration file with static tunnels and sessions.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check the configuration file and exit.
    #[arg(long, requires = "config")]
    check_config: bool,
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `ul2tpd=debug`; default $RUST_LOG or `info`.
    #[arg(long, value_name = "FILTER")]
    log: Option<String>,
    /// Data-path worker threads (default: `[datapath] workers`, else the number of CPUs).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Keep the simple data path: no TAP offloads, segmentation, batching or coalescing
    /// (docs/PERFORMANCE.md); overrides `[datapath] offload`.
    #[arg(long)]
    no_offload: bool,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let filter = args
        .log
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        // One line per event, also when a message holds a line break (journald, grep).
        .with_writer(ul2tpd::logging::OneLineStderr)
        .with_ansi(log_colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
        .init();
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ul2tpd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Whether log lines get ANSI colours: only on a terminal, and never when `NO_COLOR` is set to
/// a non-empty value (<https://no-color.org>). Files and pipes get plain text.
fn log_colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// The most descriptors the daemon asks for (each session's device is one; 1,048,576 is
/// also the kernel's default `fs.nr_open`).
const NOFILE_WANTED: u64 = 1 << 20;

/// Raise RLIMIT_NOFILE: tunnels, sessions (one device descriptor each) and API connections
/// each hold descriptors, and the API limits (docs/security.md) assume the hard limit. With
/// CAP_SYS_RESOURCE (root) both limits go up to `fs.nr_open` (at most [`NOFILE_WANTED`]);
/// otherwise the soft limit goes up to the hard one.
fn raise_nofile_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(l) => l,
        Err(e) => return tracing::warn!("cannot read RLIMIT_NOFILE: {e}"),
    };
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(hard);
    let wanted = nr_open.min(NOFILE_WANTED).max(hard);
    if wanted > hard && setrlimit(Resource::RLIMIT_NOFILE, wanted, wanted).is_ok() {
        return tracing::info!("RLIMIT_NOFILE raised from {soft}/{hard} to {wanted}/{wanted}");
    }
    if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::info!("RLIMIT_NOFILE raised from {soft} to {hard}"),
            Err(e) => tracing::warn!("cannot raise RLIMIT_NOFILE from {soft} to {hard}: {e}"),
        }
    } else {
        tracing::info!("RLIMIT_NOFILE {soft}");
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    // One validation path for --check-config, start-up and reload (config::Config::check).
    let checked = match &args.config {
        Some(path) => Some(config::Config::check_file(path)?),
        None => None,
    };
    if args.check_config {
        let n = checked.as_ref().map_or(0, |c| c.statics.len());
        println!("configuration OK: {n} static objects");
        return Ok(());
    }
    let cfg = checked
        .as_ref()
        .map(|c| c.config.clone())
        .unwrap_or_default();
    let lac = checked.as_ref().map(|c| c.lac.clone()).unwrap_or_default();
    // Where a key of a single table is, for run-time errors about it.
    let locate = {
        let source = checked.as_ref().map(|c| c.source.clone());
        move |table: &str, key: &str| match &source {
            Some(c) => format!("{}: ", c.locate(table, key)),
            None => String::new(),
        }
    };
    let socket_path = args
        .socket
        .clone()
        .or_else(|| {
            std::env::var_os(ul2tp_api::SOCKET_ENV)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        })
        .or_else(|| cfg.api.socket.clone())
        .unwrap_or_else(|| {
            ul2tp_api::default_socket_path(ul2tp_sys::netns::current_name().as_deref())
        });
    raise_nofile_limit();
    // Before any static object exists: a second daemon on a live one's socket must not
    // create (or fail on) devices and ports first.
    server::check_stale(&socket_path)?;
    let access =
        server::Access::from_names(cfg.api.group.as_deref(), cfg.api.read_group.as_deref())?;
    let workers = args
        .workers
        .or(cfg.datapath.workers)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .thread_name("ul2tpd")
        .build()?;
    rt.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        // Installed first: from here on SIGHUP re-reads the file instead of killing us.
        let mut hup = signal(SignalKind::hangup())?;
        let mut term = signal(SignalKind::terminate())?;
        let daemon = Daemon::new();
        daemon.set_stable_mac(cfg.datapath.stable_mac);
        // `--workers` also sets the data-path workers (queues of each pseudowire's TAP).
        daemon.set_datapath(ul2tpd::DataPathConfig {
            workers,
            ..cfg.datapath.runtime(args.no_offload)
        });
        daemon.registry().set_limits(cfg.limits.into());
        let mut statics = match (&args.config, checked) {
            (Some(path), Some(checked)) => Some(
                reload::Statics::start(&daemon, path, checked)
                    .await
                    .map_err(|e| anyhow::anyhow!(e))?,
            ),
            _ => None,
        };
        let mut radius_client = None;
        if let (Some(c), Some(settings)) = (&cfg.control, cfg.control_settings()) {
            if let Some(r) = &cfg.radius {
                // The LNS PPP endpoints of every profile check logins and account through it
                // (`control.rs` hands it to each PPP session it terminates).
                let host = settings.config.host_name.clone();
                let radius = ul2tpd::radius::Radius::start(r, &host)
                    .map_err(|(key, e)| anyhow::anyhow!("{}{e}", locate("radius", key)))?;
                daemon.ops().radius.store(Some(radius.clone()));
                radius_client = Some(radius);
            }
            let local = daemon.start_control(settings).map_err(|e| {
                anyhow::anyhow!(
                    "{}cannot start the control endpoint on {}: {e}",
                    locate("control", "listen"),
                    c.listen
                )
            })?;
            tracing::info!("L2TP control endpoint on {local}");
        }
        if cfg.control.is_some() {
            // Also without profiles: a reload may add some.
            if !lac.is_empty() {
                tracing::info!("{} [[lac]] profiles", lac.len());
            }
            daemon.start_dialer(lac)?;
        }
        if let Some(m) = &cfg.metrics {
            let l = tokio::net::TcpListener::bind(m.listen).await.map_err(|e| {
                anyhow::anyhow!(
                    "{}cannot serve metrics on {}: {e}",
                    locate("metrics", "listen"),
                    m.listen
                )
            })?;
            tracing::info!("metrics on http://{}/metrics", m.listen);
            tokio::spawn(ul2tpd::metrics::serve(
                l,
                daemon.registry().clone(),
                daemon.ops().clone(),
            ));
        }
        let listener = server::bind(&socket_path, access.socket_gid())?;
        tracing::info!("ul2tpd serving {}", socket_path.display());
        if let Some(why) = access
            .socket_gid()
            .and_then(|g| server::directory_blocks(&socket_path, g))
        {
            tracing::warn!("{why}");
        }
        if let (Some(g), Some(r)) = (&cfg.api.group, &cfg.api.read_group) {
            if access.admin_gid != access.read_gid {
                tracing::warn!(
                    "the API socket belongs to group {g}: members of read_group {r} must be in {g} too to connect"
                );
            }
        }
        let access: server::SharedAccess = Arc::new(arc_swap::ArcSwap::from_pointee(access));
        if let Some(s) = &mut statics {
            s.set_access(access.clone(), socket_path.clone());
        }
        let serve = tokio::spawn(server::serve(
            listener,
            daemon.clone(),
            access,
            socket_path.clone(),
            cfg.api.limits(),
        ));
        // Everything configured is up and the API answers: tell the service manager.
        let notifier = ul2tpd::notify::Notifier::from_env();
        let status = |d: &Daemon| (d.registry().tunnels().len(), d.registry().sessions().len());
        let (tunnels, sessions) = status(&daemon);
        notifier.send(&ul2tpd::notify::ready_message(
            tunnels,
            sessions,
            std::process::id(),
        ));
        tracing::info!("ready: {}", ul2tpd::notify::status_text(tunnels, sessions));
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                _ = hup.recv() => {
                    notifier.send(&ul2tpd::notify::reloading_message(
                        ul2tpd::notify::monotonic_usec(),
                    ));
                    match &mut statics {
                        // Errors are logged by reload and change nothing.
                        Some(s) => { let _ = s.reload(&daemon).await; }
                        None => tracing::info!("SIGHUP: no configuration file (--config) to re-read"),
                    }
                    let (tunnels, sessions) = status(&daemon);
                    notifier.send(&ul2tpd::notify::ready_message(
                        tunnels,
                        sessions,
                        std::process::id(),
                    ));
                }
            }
        }
        notifier.send(ul2tpd::notify::STOPPING);
        serve.abort();
        if let Some(r) = &radius_client {
            r.begin_shutdown();
        }
        daemon.shutdown().await;
        if let Some(r) = &radius_client {
            // Accounting Stops for the sessions just ended (docs/radius.md).
            r.finish(std::time::Duration::from_secs(3)).await;
        }
        let _ = std::fs::remove_file(&socket_path);
        tracing::info!("ul2tpd stopped");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::log_colour;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(log_colour(true, None));
        assert!(log_colour(true, Some(OsStr::new(""))));
        assert!(!log_colour(true, Some(OsStr::new("1"))));
        assert!(!log_colour(false, None));
        assert!(!log_colour(false, Some(OsStr::new(""))));
    }
}
