#!/usr/bin/env bash
# Makes sure the helm binary the chart checks (tools/helmcheck) run is on
# this machine: built from helm's Go module through the Go module proxy, as a
# tool of the nested module tools/helm, into the same cache directory as the
# gateways, only when missing. Prints one line when it had to build.
#
#   .ci/helm.sh          ensure helm
#   .ci/helm.sh --env    ensure helm, then print an `export` line naming it
#
# Cache: ${FORWARDAUTH_GATEWAY_CACHE:-$HOME/.cache/forwardauth-gateways}/helm-<version>.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${FORWARDAUTH_GATEWAY_CACHE:-$HOME/.cache/forwardauth-gateways}
# The version is the one tools/helm/go.mod requires.
helm_version=$(awk '$1 == "helm.sh/helm/v3" { print $2 }' "$root/tools/helm/go.mod")
[ -n "$helm_version" ] || { echo "helm: no helm.sh/helm/v3 in tools/helm/go.mod" >&2; exit 1; }
helm_bin=$cache/helm-$helm_version

if [ ! -x "$helm_bin" ]; then
	mkdir -p "$cache"
	log=$(mktemp)
	trap 'rm -f "$log"' EXIT
	start=$SECONDS
	cd "$root/tools/helm"
	# The same -X flags as helm's Makefile: its version, and the Kubernetes
	# version `helm template` and `helm lint` assume (that of client-go).
	k8s=$(go list -m -f '{{.Version}}' k8s.io/client-go)
	k8s_minor=$(echo "$k8s" | cut -d. -f2)
	ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version"
	for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
		ldflags="$ldflags -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
	done
	if ! CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$helm_bin.tmp" helm.sh/helm/v3/cmd/helm >"$log" 2>&1; then
		echo "helm: build failed" >&2
		cat "$log" >&2
		exit 1
	fi
	mv "$helm_bin.tmp" "$helm_bin"
	echo "helm: built $helm_version in $((SECONDS - start))s" >&2
fi

if [ "${1:-}" = --env ]; then
	printf 'export FORWARDAUTH_HELM=%q\n' "$helm_bin"
fi
