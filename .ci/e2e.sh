#!/usr/bin/env bash
# The end-to-end suite: the real service behind real nginx, Traefik, Caddy and
# HAProxy running the files in deploy/. Installs or builds the gateways first (cached).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
eval "$(.ci/gateways.sh --env)"
# The browser test's screenshots, kept as CI artifacts (it prints the folder).
export FORWARDAUTH_E2E_ARTIFACTS=${FORWARDAUTH_E2E_ARTIFACTS:-$PWD/artifacts/e2e}
FORWARDAUTH_E2E=required exec go test -tags e2e ./e2e/ -count=1 -v "$@"
