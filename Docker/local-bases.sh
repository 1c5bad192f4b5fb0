#!/bin/sh
# Stand-ins for the Docker Hub base images of Docker/Dockerfile, for machines that cannot
# reach Docker Hub but have podman, debootstrap, a Debian mirror and a Swift toolchain.
#
#   Docker/local-bases.sh [SWIFT_ROOT]        (default SWIFT_ROOT: /opt/swift, holding usr/)
#
# It builds, in podman's image store:
#   docker.io/library/debian:12                  debootstrap --variant=minbase bookworm
#   docker.io/library/swift:6.3-bookworm         debian:12 + the packages of swift-docker's
#                                                6.x debian/12 image + the toolchain's usr/ in /usr
#   docker.io/library/swift:6.3-bookworm-slim    debian:12 + libcurl4 libxml2 tzdata + the
#                                                toolchain's runtime (usr/lib/swift/linux,
#                                                usr/libexec/swift/linux), as swift-docker's slim
# so that `podman build --pull=never -f Docker/Dockerfile ...` builds our images unchanged.
# The official images are built the same way from swift.org's tarball; ours take the local
# toolchain instead, so the Swift version is whatever SWIFT_ROOT holds.
set -eu

swift_root=${1:-/opt/swift}
tag=${SWIFT_VERSION:-6.3}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
work=${LOCAL_BASES_DIR:-/var/tmp/coderl-local-bases}

[ -x "$swift_root/usr/bin/swift" ] || { echo "local-bases: no Swift toolchain at $swift_root/usr/bin/swift" >&2; exit 2; }
for tool in podman debootstrap; do
    command -v $tool >/dev/null || { echo "local-bases: $tool is missing (apt-get install podman debootstrap)" >&2; exit 2; }
done

mkdir -p "$work"
. "$(dirname "$0")/podman-env.sh"
if ! podman image exists docker.io/library/debian:12; then
    rm -rf "$work/rootfs"
    debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror"
    tar -C "$work/rootfs" -c . | podman import --change 'CMD ["bash"]' - docker.io/library/debian:12
    rm -rf "$work/rootfs"
fi

cat > "$work/Containerfile.full" <<'EOF'
FROM docker.io/library/debian:12
RUN export DEBIAN_FRONTEND=noninteractive && apt-get -q update && apt-get -q install -y \
      binutils libicu-dev libcurl4-openssl-dev libedit-dev libsqlite3-dev libncurses-dev \
      libpython3-dev libxml2-dev pkg-config uuid-dev tzdata git gcc libstdc++-12-dev \
 && rm -r /var/lib/apt/lists/*
RUN cp -a /toolchain/usr/. /usr/ && chmod -R o+r /usr/lib/swift && swift --version
EOF
cat > "$work/Containerfile.slim" <<'EOF'
FROM docker.io/library/debian:12
RUN export DEBIAN_FRONTEND=noninteractive && apt-get -q update && apt-get -q install -y \
      libcurl4 libxml2 tzdata \
 && rm -r /var/lib/apt/lists/*
RUN mkdir -p /usr/lib/swift /usr/libexec/swift \
 && cp -a /toolchain/usr/lib/swift/linux /usr/lib/swift/ \
 && if [ -d /toolchain/usr/libexec/swift/linux ]; then cp -a /toolchain/usr/libexec/swift/linux /usr/libexec/swift/; fi \
 && chmod -R o+r /usr/lib/swift /usr/libexec/swift
EOF

podman build --pull=never -v "$swift_root:/toolchain:ro" -f "$work/Containerfile.full" \
    -t "docker.io/library/swift:$tag-bookworm" "$work"
podman build --pull=never -v "$swift_root:/toolchain:ro" -f "$work/Containerfile.slim" \
    -t "docker.io/library/swift:$tag-bookworm-slim" "$work"
podman images --filter reference='docker.io/library/*'
