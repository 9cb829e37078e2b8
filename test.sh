#!/usr/bin/env bash
# Run the test suite: ./test.sh [pytest arguments]
#
# Sets up .venv with requirements-dev.txt (skipped when unchanged), then runs pytest.
# The suite always runs on SQLite; with MEDCHAT_TEST_DATABASE_URL set (see
# scripts/test-services.sh) it runs on PostgreSQL too. Lint and type checks live in .ci/run.
#
# Tests run on MEDCHAT_TEST_WORKERS pytest-xdist workers (default 2): the browser tests one
# after another on one worker, each other end-to-end module whole on one worker, the rest
# spread over both (tests/conftest.py: pytest_xdist_make_scheduler).
# ./test.sh -n 0 runs in one process (needed for --pdb).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

scripts/ensure-venv.sh requirements-dev.txt
exec .venv/bin/pytest -n "${MEDCHAT_TEST_WORKERS:-2}" "$@"
