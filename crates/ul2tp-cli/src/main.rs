//! The `ul2tp` command: `ip l2tp` for ul2tpd. All logic lives in the `ul2tp_cli` library.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let code = ul2tp_cli::run(&args, &mut stdout.lock(), &mut stderr.lock());
    std::process::exit(code);
}
