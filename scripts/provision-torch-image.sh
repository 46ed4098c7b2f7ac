#!/usr/bin/env bash
# Builds a real PyTorch (CPU) SIF for the smoke-test suite: a minbase Debian root with Debian's python3-torch,
# packed by `apptainer build --fakeroot` from the directory. Cached at $OUT; a valid cached image is kept, so a
# second run only checks. Run as root (debootstrap, chroot). Usage: provision-torch-image.sh [--force]
set -euo pipefail

log() { printf '[provision-torch] %s\n' "$*"; }
die() { printf '[provision-torch] error: %s\n' "$*" >&2; exit 1; }

OUT=${BUILD_IMAGE_TORCH_SIF:-/var/cache/build-image/torch-cpu.sif}
# trixie has torch 2.6; bookworm's 1.13 would also do but is far from what the centre ships.
SUITE=${BUILD_IMAGE_TORCH_SUITE:-trixie}
LABEL=org.build-image.torch-cpu
force=${1:-}

[[ $(id -u) -eq 0 ]] || die "run as root (debootstrap and chroot need it)"
command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install debootstrap"
command -v apptainer >/dev/null || die "apptainer is missing: run scripts/provision.sh first"

# A SIF starts with a shebang line, then the magic `SIF_MAGIC` at offset 32.
sif_valid() {
  [[ -s $1 ]] || return 1
  [[ $(dd if="$1" bs=1 skip=32 count=9 status=none 2>/dev/null) == SIF_MAGIC ]] || return 1
  # The shim does not bind /var wholesale: make the cache directory visible to it explicitly.
  BUILD_IMAGE_SHIM_BINDS=$(dirname "$1") apptainer inspect --json "$1" 2>/dev/null | grep -q "\"$LABEL\""
}

if [[ $force != --force ]] && sif_valid "$OUT"; then
  log "cached and valid: $OUT ($(du -h "$OUT" | cut -f1))"
  exit 0
fi

mirror() {
  local m
  m=$(grep -rhE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
    grep -oE 'https?://[^ ]+/debian/?' | grep -v security | head -1 || true)
  echo "${m:-http://deb.debian.org/debian}"
}

start=$(date +%s)
# /var/tmp: the apptainer shim binds it (of /var, only /var/tmp and /var/cache/build-image are bound).
work=$(mktemp -d /var/tmp/build-image-torch.XXXXXX)
root=$work/root
cleanup() {
  for m in "$root/proc" "$root/dev"; do mountpoint -q "$m" 2>/dev/null && umount -l "$m"; done
  rm -rf "$work"
}
trap cleanup EXIT

m=$(mirror)
log "debootstrap --variant=minbase $SUITE from $m"
debootstrap --variant=minbase "$SUITE" "$root" "$m" >"$work/debootstrap.log" 2>&1 || {
  tail -20 "$work/debootstrap.log" >&2
  die "debootstrap failed"
}
log "debootstrap done ($(($(date +%s) - start)) s)"

cat >"$root/etc/apt/apt.conf.d/90build-image" <<'APT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
APT
# Packages must not start services inside the root.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
chroot "$root" apt-get -qq update
# Without recommends, libblas.so.3 is the reference BLAS (torch is built with BLAS_INFO=generic): one thread and
# ~3 GFLOP/s. OpenBLAS takes over the libblas.so.3 alternative: threaded, ~20x faster on two cores.
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-torch libopenblas0-pthread >"$work/apt.log" 2>&1 || {
  tail -20 "$work/apt.log" >&2
  die "apt-get install python3-torch failed"
}
torch_version=$(chroot "$root" python3 -c 'import torch; print(torch.__version__)')
umount -l "$root/proc"
log "python3-torch $torch_version installed ($(($(date +%s) - start)) s)"

# Trim what a smoke image never reads: apt lists and archives, docs, man pages, locales, the tests directory
# that Debian ships with torch, and the package manager's caches.
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
  "$root"/usr/share/locale/* "$root"/var/cache/debconf/*-old "$root"/var/log/* "$root/usr/sbin/policy-rc.d"
# libtorch-test is a hard dependency of python3-torch, but its test binaries are never run here.
chroot "$root" dpkg -L libtorch-test 2>/dev/null | while read -r f; do [[ -f $root$f ]] && rm -f "$root$f"; done
find "$root/usr/lib/python3" -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null || true
find "$root/usr/lib/python3/dist-packages/torch" -path '*/include' -type d -prune -exec rm -rf {} + 2>/dev/null || true
# debootstrap leaves device nodes in /dev (console, null, ...): a --fakeroot build cannot chown them, and
# apptainer mounts /dev at run time anyway.
rm -rf "${root:?}"/dev/*
log "root filesystem: $(du -sh "$root" | cut -f1); largest: $(du -s "$root"/usr/lib/x86_64-linux-gnu/* "$root"/usr/lib/python3/dist-packages/* 2>/dev/null | sort -rn | head -5 | awk '{printf "%s %dM, ", $2, $1/1024}' | sed "s|$root||g")"

# The image's metadata: apptainer build from a directory keeps /.singularity.d, so labels go in its labels.json.
mkdir -p "$root/.singularity.d"
printf '{\n  "%s": "%s",\n  "org.build-image.torch-version": "%s"\n}\n' "$LABEL" "$SUITE" "$torch_version" >"$root/.singularity.d/labels.json"

mkdir -p "$(dirname "$OUT")"
partial=$work/torch-cpu.sif
log "apptainer build --fakeroot (sandbox directory -> SIF)"
apptainer build --fakeroot --force "$partial" "$root/" >"$work/build.log" 2>&1 || {
  tail -20 "$work/build.log" >&2
  die "apptainer build failed"
}
# Copy next to the target, then rename: a reader never sees a half-written image.
cp "$partial" "$OUT.partial"
mv -f "$OUT.partial" "$OUT"
sif_valid "$OUT" || die "the built image at $OUT does not inspect as expected"
log "built $OUT: $(du -h "$OUT" | cut -f1), torch $torch_version, $(($(date +%s) - start)) s in all"
