#!/usr/bin/env bash
# Make the project runnable on a bare Debian 12 machine: Python 3.11 with venv (from Debian
# when missing) and the virtualenv at .venv with quoteflow installed. Quick (a stamp check)
# when nothing changed. Usage: scripts/bootstrap.sh [EXTRAS]
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${1:-}"
stamp=".venv/.installed${extras:+-$extras}"

apt_install() {
    echo "bootstrap: installing system packages: $*"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

python=$(command -v python3.11 || true)
if [ -z "$python" ]; then
    apt_install python3.11 python3.11-venv
    python=$(command -v python3.11)
fi
"$python" -c 'import venv, ensurepip' 2>/dev/null || apt_install python3.11-venv

[ -x .venv/bin/python ] || "$python" -m venv .venv
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "bootstrap: installing Python dependencies into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
    touch "$stamp"
fi

# The compiled L2 book behind models.book (rust/quoteflow_book, Rust through PyO3): pip builds
# it with cargo through its pinned maturin backend whenever a source file is newer than the
# last build (the first build takes about a minute; cargo fetches the crates it pins).
book_stamp=.venv/.installed-book
if [ ! -f "$book_stamp" ] || [ -n "$(find rust/quoteflow_book -path rust/quoteflow_book/target \
        -prune -o -type f -newer "$book_stamp" -print -quit)" ]; then
    command -v cargo >/dev/null || export PATH="$HOME/.cargo/bin:$PATH"
    command -v cargo >/dev/null || apt_install cargo
    echo "bootstrap: building the compiled order book (rust/quoteflow_book) into .venv"
    .venv/bin/python -m pip install -q ./rust/quoteflow_book
    touch "$book_stamp"
fi
