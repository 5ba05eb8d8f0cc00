#!/bin/sh
# Build quoteflow's container image (the Containerfile) with buildah, with no registry of
# base images: the base root filesystem is made from Debian's packages by mmdebstrap.
#   apt-get install buildah mmdebstrap      # once, as root
#   k8s/build-image.sh [TAG]                # default localhost/quoteflow:0.1.0
# Then push it where the cluster pulls from and set `images:` in the overlay
# (docs/kubernetes.md). STORAGE_DRIVER=vfs and --isolation chroot work inside containers
# and sandboxes without overlayfs or user namespaces; drop them on a normal host.
set -eu
root="$(cd "$(dirname "$0")/.." && pwd)"
tag="${1:-localhost/quoteflow:0.1.0}"
base="localhost/quoteflow-base:bookworm"
export STORAGE_DRIVER="${STORAGE_DRIVER:-vfs}"
isolation="${BUILDAH_ISOLATION:-chroot}"

if ! buildah inspect --type image "$base" >/dev/null 2>&1; then
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    mmdebstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$work/rootfs.tar"
    printf 'FROM scratch\nADD rootfs.tar /\nCMD ["/bin/sh"]\n' > "$work/Containerfile"
    buildah bud --isolation "$isolation" -t "$base" -f "$work/Containerfile" "$work"
fi
# Behind a TLS-inspecting proxy (PIP_CERT names its CA bundle) pip in the build needs it too.
set --
if [ -n "${PIP_CERT:-}" ]; then
    set -- --volume "$PIP_CERT:/run/host-ca.crt:ro" --build-arg HOST_CA=/run/host-ca.crt
fi
buildah bud --isolation "$isolation" --build-arg "BASE=$base" "$@" -t "$tag" \
    -f "$root/Containerfile" "$root"
echo "built $tag"
