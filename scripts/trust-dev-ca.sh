#!/usr/bin/env bash
# Trust MedChat's local development certificate authority (made by ./start.sh), once:
#
#   scripts/trust-dev-ca.sh [instance/ca.pem]
#
# - Chromium (and Firefox using the shared store) on Linux: the user's NSS database
#   ~/.pki/nssdb, with certutil from Debian's libnss3-tools. Restart the browser afterwards.
# - This machine's system store (curl, Python, ...), when run as root: update-ca-certificates.
# Only development instances need this; a hospital's own certificate needs nothing.
set -euo pipefail

ca="${1:-${MEDCHAT_INSTANCE_PATH:-$(dirname "${BASH_SOURCE[0]}")/../instance}/ca.pem}"
if [ ! -f "$ca" ]; then
    echo "no authority at $ca: run ./start.sh (or quart --app app prepare-instance) first" >&2
    exit 1
fi
# One nickname per authority (its serial is in the subject), so instances do not clash.
serial="$(openssl x509 -in "$ca" -noout -serial 2>/dev/null | cut -d= -f2 | cut -c1-12 || true)"
nick="MedChat local CA ${serial:-dev}"

if command -v certutil >/dev/null; then
    nssdb="$HOME/.pki/nssdb"
    mkdir -p "$nssdb"
    if [ ! -f "$nssdb/cert9.db" ]; then
        certutil -d "sql:$nssdb" -N --empty-password
    fi
    certutil -d "sql:$nssdb" -D -n "$nick" >/dev/null 2>&1 || true
    certutil -d "sql:$nssdb" -A -t "C,," -n "$nick" -i "$ca"
    echo "Chromium (NSS store $nssdb) trusts $ca as \"$nick\"; restart the browser"
else
    echo "certutil not found: apt-get install libnss3-tools, then run this again (Chromium's store)" >&2
fi

if [ "$(id -u)" = 0 ] && [ "${MEDCHAT_TRUST_SYSTEM:-1}" = 1 ] && command -v update-ca-certificates >/dev/null; then
    install -m 644 "$ca" "/usr/local/share/ca-certificates/medchat-dev-${serial:-ca}.crt"
    update-ca-certificates >/dev/null
    echo "the system store trusts it too (update-ca-certificates)"
fi
