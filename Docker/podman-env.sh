# Sourced by Docker/check.sh and Docker/local-bases.sh: podman settings for hosts where its
# defaults fail. Podman asks for rlimits above what an unprivileged container host grants
# (no CAP_SYS_RESOURCE), and crun refuses hybrid cgroups; unless CONTAINERS_CONF is already
# set, podman here uses runc and rlimits within the current hard limits (nproc 10000: on the
# development machines values above ~50000 were refused though the hard limit is higher).
if [ -z "${CONTAINERS_CONF:-}" ]; then
    podman_conf_dir=${PODMAN_CONF_DIR:-/var/tmp/coderl-podman}
    mkdir -p "$podman_conf_dir"
    nofile=$(ulimit -Hn)
    [ "$nofile" = unlimited ] && nofile=1048576
    cat > "$podman_conf_dir/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=10000:10000"]
[engine]
runtime = "runc"
CONF
    command -v runc >/dev/null || { echo "podman-env: runc is missing (apt-get install runc)" >&2; exit 2; }
    export CONTAINERS_CONF="$podman_conf_dir/containers.conf"
fi
