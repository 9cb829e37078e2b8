#!/usr/bin/env bash
# Start MedChat: https://localhost:8443 (HTTP/2), and http://localhost:8080 redirecting to it.
#
#   MEDCHAT_PORT=9443 MEDCHAT_HTTP_PORT=9080 ./start.sh     other ports
#   MEDCHAT_PUBLIC_URL=https://medchat.ward.example ./start.sh   the name people use (links, redirects)
#
# Idempotent: creates .venv and installs requirements.txt when needed, prepares the instance
# folder (secret key, self-signed certificate, database migrated to head), prints a one-time
# setup link while no account exists, then runs Hypercorn with hypercorn.toml.
# MEDCHAT_INSTANCE_PATH moves the instance folder; other MEDCHAT_* variables configure the app.
set -euo pipefail
# A relative MEDCHAT_INSTANCE_PATH means relative to where start.sh was called from.
if [ -n "${MEDCHAT_INSTANCE_PATH:-}" ]; then
    MEDCHAT_INSTANCE_PATH="$(realpath -m "$MEDCHAT_INSTANCE_PATH")"
    export MEDCHAT_INSTANCE_PATH
fi
cd "$(dirname "${BASH_SOURCE[0]}")"

scripts/ensure-venv.sh requirements.txt

# The ports it binds (all interfaces) and the public URL printed links and redirects use:
# by default https://localhost:<port>. Plain HTTP answers only with a redirect there.
port="${MEDCHAT_PORT:-8443}"
http_port="${MEDCHAT_HTTP_PORT:-8080}"
for value in "$port" "$http_port"; do
    case "$value" in
        ''|*[!0-9]*) echo "MEDCHAT_PORT and MEDCHAT_HTTP_PORT are port numbers (got '$value')" >&2; exit 2 ;;
    esac
done
if [ "$port" = 443 ]; then default_url="https://localhost"; else default_url="https://localhost:$port"; fi
export MEDCHAT_PUBLIC_URL="${MEDCHAT_PUBLIC_URL:-$default_url}"
export MEDCHAT_HTTPS_REDIRECT="${MEDCHAT_HTTPS_REDIRECT:-true}"

.venv/bin/quart --app app prepare-instance
.venv/bin/quart --app app setup-link

# hypercorn.toml names instance/cert.pem and ports 8443/8080; the flags follow a moved
# instance folder and the chosen ports (Hypercorn's command-line flags win over the file).
instance="${MEDCHAT_INSTANCE_PATH:-instance}"
echo "MedChat: $MEDCHAT_PUBLIC_URL (port $port; http port $http_port redirects there); Ctrl-C stops it." >&2
exec .venv/bin/hypercorn --config hypercorn.toml \
    --bind "0.0.0.0:$port" --insecure-bind "0.0.0.0:$http_port" \
    --certfile "$instance/cert.pem" --keyfile "$instance/key.pem" \
    "app:create_app()"
