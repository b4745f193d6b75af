//! The `ul2tp` command: `ip l2tp` for ul2tpd. All logic lives in the `ul2tp_cli` library.

fn main() {
    // args_os: a non-UTF-8 argument must not panic; it is refused by the grammar instead.
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let code = ul2tp_cli::run(&args, &mut stdout.lock(), &mut stderr.lock());
    std::process::exit(code);
}
