#!/usr/bin/env bash
# Make .venv ready for a requirements file: create it if missing, install only when changed.
#
#   scripts/ensure-venv.sh requirements.txt       (start.sh)
#   scripts/ensure-venv.sh requirements-dev.txt   (test.sh, .ci/run)
#
# A stamp in .venv/ holds a hash of the requirements file and the files it includes with
# "-r", plus the interpreter version; pip runs only when that hash changes. Idempotent.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

req="${1:-requirements.txt}"
venv=.venv
stamp="$venv/.medchat-installed-$(basename "$req")"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

say() { echo "[venv] $*" >&2; }

# Debian's own python3 needs python3-venv (ensurepip) before "python3 -m venv" works.
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing python3-venv (Debian)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    else
        say "python3 cannot make a virtual environment; install python3-venv first"
        exit 1
    fi
fi

# A venv whose interpreter is gone (Python moved or upgraded) is rebuilt.
if [ -d "$venv" ] && ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    say "$venv is broken; recreating it"
    rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
    say "creating $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
fi

# The hash covers the file and, one level deep, the files it pulls in with -r.
hash_inputs() {
    local file="$1" dir
    dir="$(dirname "$file")"
    cat "$file"
    sed -nE 's/^[[:space:]]*-r[[:space:]]+([^[:space:]]+).*/\1/p' "$file" | while read -r inc; do
        cat "$dir/$inc"
    done
    "$venv/bin/python" -c 'import sys; print(sys.version)'
}
want="$(hash_inputs "$req" | sha256sum | cut -d' ' -f1)"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "$req unchanged since the last install; skipping pip"
    exit 0
fi

say "installing $req (quietly)"
"$venv/bin/python" -m pip install --quiet -r "$req"
echo "$want" > "$stamp"
