#!/bin/sh
# Builds the executor and head images with podman and runs a short real pipeline from
# Docker/compose.yaml (head + EXECUTORS executor containers, default 2) with docker-compose
# through podman's Docker-compatible API; then writes the run's HTML report from the volume.
#
#   Docker/check.sh                 (from anywhere; needs podman and docker-compose)
#
# Where Docker Hub is unreachable, build the base images first with Docker/local-bases.sh.
# Podman settings for hosts where its defaults fail: Docker/podman-env.sh.
set -eu
cd "$(dirname "$0")/.."
work=${CHECK_DIR:-/var/tmp/coderl-docker-check}
mkdir -p "$work"
. Docker/podman-env.sh

# A local mirror of the Swift packages (SWIFT_PACKAGES_MIRROR=DIR, default /opt/swift-packages
# where it exists) is mounted into the build for machines that cannot reach GitHub.
mirror_dir=${SWIFT_PACKAGES_MIRROR:-/opt/swift-packages}
mirror=
[ -d "$mirror_dir" ] && mirror="-v $mirror_dir:/mirror:ro --build-arg SWIFT_PACKAGES_MIRROR=/mirror"
# The host's CA bundle goes to pip in the build (for networks behind a TLS-intercepting proxy).
ca_bundle=${PIP_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[ -f "$ca_bundle" ] && mirror="$mirror -v $ca_bundle:/host-ca.crt:ro --build-arg PIP_CA_BUNDLE=/host-ca.crt"

start=$(date +%s)
# CHECK_NO_CACHE=1 rebuilds every layer (the head then reuses the executor's fresh layers).
fresh=${CHECK_NO_CACHE:+--no-cache}
for target in executor head; do
    podman build --pull=never --ignorefile Docker/Dockerfile.dockerignore -f Docker/Dockerfile \
        $mirror $fresh --target $target -t coderl-$target:latest .
    fresh=
done
built=$(date +%s)
podman images --filter reference='coderl-*'

sock="$work/podman.sock"
rm -f "$sock"
podman system service --time=0 "unix://$sock" &
service=$!
export DOCKER_HOST="unix://$sock"
compose="docker-compose -p coderl-check -f Docker/compose.yaml -f Docker/compose.check.yaml"
trap '$compose down -v >/dev/null 2>&1 || true; kill $service 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.2; done

$compose down -v >/dev/null 2>&1 || true
$compose up --no-build --abort-on-container-exit --exit-code-from head
$compose run --rm --no-deps head report --ledger /runs/check/ledger --out /runs/check/report.html
$compose run --rm --no-deps --entrypoint sh head -c 'ls -l /runs/check && mdb_stat -e /runs/check/ledger | head -5'
cp "$(podman volume inspect coderl-check_runs --format '{{.Mountpoint}}')/check/report.html" "$work/report.html"
echo "report: $work/report.html"
echo "images built in $((built - start)) s; pipeline and report in $(($(date +%s) - built)) s"
