#!/usr/bin/env bash
# Start MedChat: https://localhost:8443 (HTTP/2), and http://localhost:8080 redirecting to it.
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

# Plain HTTP (hypercorn.toml's insecure_bind) answers with a redirect to the HTTPS port.
export MEDCHAT_HTTPS_REDIRECT_PORT="${MEDCHAT_HTTPS_REDIRECT_PORT:-8443}"

.venv/bin/quart --app app prepare-instance
.venv/bin/quart --app app setup-link

# hypercorn.toml names instance/cert.pem; the flags follow a moved instance folder
# (Hypercorn's command-line flags win over the file).
instance="${MEDCHAT_INSTANCE_PATH:-instance}"
echo "MedChat: https://localhost:8443 (http://localhost:8080 redirects there); Ctrl-C stops it." >&2
exec .venv/bin/hypercorn --config hypercorn.toml \
    --certfile "$instance/cert.pem" --keyfile "$instance/key.pem" \
    "app:create_app()"
