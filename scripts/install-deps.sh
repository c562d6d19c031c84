#!/bin/sh
# Installs the Debian/Ubuntu packages qbrief needs to build, test and render briefs.
# Idempotent: installs only what is missing; uses sudo only when not already root.
# slurmctld slurmd slurm-client munge: a one-node Slurm cluster for `qbrief slurm` and its
# test (scripts/slurm-local.sh).
set -eu

PKGS="build-essential pkg-config clang clang-format libomp-dev libclang-rt-dev
libvulkan-dev glslc mesa-vulkan-drivers vulkan-validationlayers
libjansson-dev libpcre2-dev libglib2.0-dev libsqlite3-dev libyaml-dev libcsv-dev
libhpdf-dev libcairo2-dev fonts-dejavu-core poppler-utils python3
slurmctld slurmd slurm-client munge"

missing=""
for p in $PKGS; do
    case "$p" in
    libclang-rt-dev)
        # clang's runtime (libFuzzer, sanitizers) is versioned: libclang-rt-14-dev on Debian 12
        v=$(clang --version 2>/dev/null | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -1)
        [ -n "$v" ] || continue
        p="libclang-rt-$v-dev"
        ;;
    esac
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "install-deps: everything is installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-deps: need root or sudo to install:$missing" >&2; exit 1; }
    SUDO="sudo"
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# try without a fresh package index first (fast, works offline with a warm cache)
if ! $SUDO apt-get install -y --no-install-recommends $missing; then
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends $missing
fi
