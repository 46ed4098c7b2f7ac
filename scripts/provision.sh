#!/usr/bin/env bash
# Installs what build-image's tests and demo need on a Debian or Ubuntu machine, as root. Idempotent:
# a second run only checks. Apptainer comes from the distribution where it has one; otherwise (Debian 12)
# from Debian's sid packages inside a debootstrapped trixie root, reached through a host-side shim.
set -euo pipefail

log() { printf '[provision] %s\n' "$*"; }
die() { printf '[provision] error: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run as root (it installs packages and writes /etc/subuid)"
command -v apt-get >/dev/null || die "needs apt-get (Debian or Ubuntu)"

APPTAINER_ROOT=${BUILD_IMAGE_APPTAINER_ROOT:-/var/lib/build-image/apptainer-root}
SHIM_DIR=/usr/local/bin
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(
  ca-certificates debootstrap util-linux
  docker-registry apache2-utils skopeo umoci busybox-static
  squashfs-tools openssh-server openssh-client python3-docutils slurm-wlm munge sudo
  fuse2fs # a FUSE file system, which the disk placement must not choose on its own (test/integration/disk.test.ts)
  tcsh # csh, a login shell some cluster accounts have: the remote hashing program must pass through it (test/unit/hash-lane.test.ts)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing: ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The packaged services must not run on their own: the tests start their own instances on free ports.
for svc in docker-registry ssh slurmctld slurmd munge; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done

# Apptainer builds without CAP_SYS_RESOURCE need --fakeroot, which needs subordinate ids for root.
for f in /etc/subuid /etc/subgid; do
  touch "$f"
  grep -q '^root:' "$f" || echo 'root:100000:65536' >>"$f"
done

# put MODE FILE < CONTENT: replaces FILE only when the content differs, and by rename, so a shell already running
# the old script (provisioning may run while tests use apptainer, e.g. from `npm run demo`) keeps reading it whole.
put() {
  local tmp
  tmp=$(mktemp "$2.XXXXXX")
  cat >"$tmp"
  if cmp -s "$tmp" "$2"; then rm -f "$tmp"; return 0; fi
  chmod "$1" "$tmp"
  mv -f "$tmp" "$2"
}

apptainer_works() { apptainer --version >/dev/null 2>&1; }

install_from_distribution() {
  apt-cache policy apptainer 2>/dev/null | grep -q 'Candidate: [0-9]' || return 1
  log "installing apptainer from the distribution"
  apt-get install -y -qq --no-install-recommends apptainer squashfs-tools squashfuse fuse2fs >/dev/null
}

mirror() {
  local m
  # The first active Debian mirror: a URIs: line (deb822) or a deb line, not a comment.
  m=$(grep -rhE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
    grep -oE 'https?://[^ ]+/debian/?' | grep -v security | head -1 || true)
  echo "${m:-http://deb.debian.org/debian}"
}

install_in_trixie_root() {
  local m; m=$(mirror)
  if [[ ! -x $APPTAINER_ROOT/usr/bin/apptainer ]]; then
    log "bootstrapping a trixie root at $APPTAINER_ROOT from $m (apptainer needs glibc >= 2.38)"
    rm -rf "$APPTAINER_ROOT.tmp"
    mkdir -p "$(dirname "$APPTAINER_ROOT")"
    debootstrap --variant=minbase trixie "$APPTAINER_ROOT.tmp" "$m" >/dev/null
    cat >"$APPTAINER_ROOT.tmp/etc/apt/sources.list.d/sid.sources" <<SRC
Types: deb
URIs: $m
Suites: sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    cat >"$APPTAINER_ROOT.tmp/etc/apt/preferences.d/sid" <<'PIN'
Package: *
Pin: release a=unstable
Pin-Priority: 100
PIN
    chroot "$APPTAINER_ROOT.tmp" apt-get -qq -o Acquire::Check-Valid-Until=false update
    chroot "$APPTAINER_ROOT.tmp" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      -o Acquire::Check-Valid-Until=false --no-install-recommends -t sid apptainer squashfs-tools squashfuse fuse2fs >/dev/null
    chroot "$APPTAINER_ROOT.tmp" apt-get clean
    mv "$APPTAINER_ROOT.tmp" "$APPTAINER_ROOT"
  fi
  # squashfuse lets `exec --userns` mount a SIF; without it apptainer extracts the image with a helper that
  # asks for every capability and fails where root lacks CAP_SYS_RESOURCE.
  if [[ ! -x $APPTAINER_ROOT/usr/bin/squashfuse ]]; then
    chroot "$APPTAINER_ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      -o Acquire::Check-Valid-Until=false --no-install-recommends squashfuse fuse2fs >/dev/null
  fi
  for f in /etc/subuid /etc/subgid; do
    grep -q '^root:' "$APPTAINER_ROOT$f" 2>/dev/null || echo 'root:100000:65536' >>"$APPTAINER_ROOT$f"
  done
  put 0644 "$APPTAINER_ROOT/etc/hosts" </etc/hosts
  put 0755 "$SHIM_DIR/build-image-apptainer-shim" <"$(dirname "$0")/apptainer-shim.sh"
  for name in apptainer singularity; do
    printf '#!/bin/sh\nexport BUILD_IMAGE_APPTAINER_ROOT=%s\nexec %s/build-image-apptainer-shim %s "$@"\n' \
      "$APPTAINER_ROOT" "$SHIM_DIR" "$name" | put 0755 "$SHIM_DIR/$name"
  done
  log "apptainer shim installed at $SHIM_DIR/apptainer (runs inside $APPTAINER_ROOT)"
}

if [[ -d $APPTAINER_ROOT ]]; then
  install_in_trixie_root
elif apptainer_works; then
  log "apptainer present: $(apptainer --version)"
else
  install_from_distribution || install_in_trixie_root
  apptainer_works || die "apptainer was installed but does not run: $(apptainer --version 2>&1 | tail -3)"
  log "apptainer ready: $(apptainer --version)"
fi

# Two unprivileged users for the `sudo` input's tests, as on a hosted runner: `bi-sudo` with passwordless sudo
# (GitHub's `runner` has `NOPASSWD: ALL`), and `bi-nosudo` without.
for user in bi-sudo bi-nosudo; do
  id -u "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
done
printf 'bi-sudo ALL=(ALL) NOPASSWD: ALL\n' | put 0440 /etc/sudoers.d/build-image-test
visudo -cq -f /etc/sudoers.d/build-image-test || die "sudoers entry for bi-sudo is invalid"

# NVIDIA enroot and the pyxis Slurm plugin, built from their release sources (../shared/vendor, or GitHub).
bash "$(dirname "$0")/provision-enroot.sh"

# A real PyTorch (CPU) image for the smoke-test suite, built once and cached.
bash "$(dirname "$0")/provision-torch-image.sh"

for tool in docker-registry skopeo umoci mksquashfs sshd python3 slurmctld munged htpasswd sudo enroot; do
  command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] || [[ -x /usr/bin/$tool ]] || die "$tool is missing after install"
done
python3 -c 'import docutils' 2>/dev/null || /usr/bin/python3 -c 'import docutils' || die "python3-docutils is missing"
log "done"
