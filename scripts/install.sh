#!/usr/bin/env bash
# Install the manuals and shell completions (and, with --bin, the release binaries).
#   scripts/install.sh            # man pages and completions under $PREFIX (default /usr/local)
#   scripts/install.sh --bin      # also target/release/ul2tpd and ul2tp (cargo build --release first)
#   DESTDIR=/tmp/stage PREFIX=/usr scripts/install.sh
set -euo pipefail
cd "$(dirname "$0")/.."
prefix="${PREFIX:-/usr/local}"
root="${DESTDIR:-}${prefix}"

install -d "$root/share/man/man8" "$root/share/man/man5"
install -m 0644 man/ul2tp.8 man/ul2tpd.8 "$root/share/man/man8/"
install -m 0644 man/ul2tpd.toml.5 "$root/share/man/man5/"

install -d "$root/share/bash-completion/completions" "$root/share/zsh/site-functions"
install -m 0644 completions/ul2tp.bash "$root/share/bash-completion/completions/ul2tp"
# bash-completion loads a command's file by its name: ul2tpd's is the same file.
install -m 0644 completions/ul2tp.bash "$root/share/bash-completion/completions/ul2tpd"
install -m 0644 completions/_ul2tp "$root/share/zsh/site-functions/_ul2tp"

if [ "${1:-}" = "--bin" ]; then
  install -d "$root/bin" "$root/sbin"
  install -m 0755 target/release/ul2tp "$root/bin/"
  install -m 0755 target/release/ul2tpd "$root/sbin/"
fi
command -v mandb >/dev/null 2>&1 && [ -z "${DESTDIR:-}" ] && mandb -q >/dev/null 2>&1 || true
echo "installed under $root"
