#!/usr/bin/env bash
# Builds and installs NVIDIA enroot and the pyxis Slurm plugin from their release sources, as root. Debian packages
# neither. Prefers the unmodified upstream archives in ../shared/vendor (checked against SHA256SUMS); without them it
# downloads the same release tags from GitHub, which needs the internet. Idempotent: an installed version is kept.
# The recipe (FORCE_GLIBC, Debian's libbsd for strlcpy) is the one recorded in ../shared/REAL-COMPONENTS.md.
set -euo pipefail

log() { printf '[provision] %s\n' "$*"; }
die() { printf '[provision] error: %s\n' "$*" >&2; exit 1; }

ENROOT_VERSION=4.1.2
PYXIS_VERSION=0.24.0
PREFIX=/usr/local
PYXIS_DIR=$PREFIX/lib/build-image/pyxis
VENDOR=${BUILD_IMAGE_VENDOR:-$(cd "$(dirname "$0")/.." && pwd)/../shared/vendor}
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(gcc make libc6-dev libbsd-dev curl gawk jq parallel squashfs-tools zstd pigz libslurm-dev)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing enroot's and pyxis's build dependencies: ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# source NAME VERSION URL: unpacks the release archive into the current directory (vendored, or downloaded).
source_of() {
  local name=$1 version=$2 url=$3 archive="$1-$2.tar.gz"
  if [[ -f $VENDOR/$archive ]]; then
    (cd "$VENDOR" && grep " $archive\$" SHA256SUMS | sha256sum -c --quiet -) || die "$VENDOR/$archive does not match SHA256SUMS"
    tar xzf "$VENDOR/$archive"
  else
    log "no $VENDOR/$archive: downloading $name v$version from GitHub (needs the internet)"
    curl -fsSL "$url" | tar xz
    [[ -d $name-$version ]] || mv "$(ls -d "$name"-* | head -1)" "$name-$version"
  fi
  echo "$PWD/$name-$version"
}

install_enroot() {
  local src lib=$PREFIX/lib/enroot conf=$PREFIX/etc/enroot data=$PREFIX/share/enroot u
  src=$(source_of enroot "$ENROOT_VERSION" "https://github.com/NVIDIA/enroot/archive/refs/tags/v$ENROOT_VERSION.tar.gz")
  log "building enroot $ENROOT_VERSION"
  make -s FORCE_GLIBC=y -C "$src/deps" libbsd/.stamp >/dev/null
  for u in aufs2ovlfs mksquashovlfs mount switchroot nsenter; do
    # glibc 2.36 lacks strlcpy/strlcat: Debian's libbsd supplies them (-lbsd alone would pick the vendored subset);
    # _GNU_SOURCE must precede the forced include. -w: upstream's own warnings (it builds with musl there).
    gcc -std=c99 -O2 -w -D_GNU_SOURCE -isystem "$src/deps/dist/libbsd/include" -include bsd/string.h \
      -o "$src/bin/enroot-$u" "$src/bin/enroot-$u.c" "$src/deps/dist/libbsd/libbsd.a" /usr/lib/x86_64-linux-gnu/libbsd.so
  done
  # What `make install` does, without its musl and makeself submodules (absent from the release archive).
  install -d -m 755 "$conf"/{environ.d,mounts.d,hooks.d,enroot.conf.d} "$lib" "$PREFIX/bin" "$data"/{environ.d,mounts.d,hooks.d}
  for f in enroot.in conf/enroot.conf.in; do
    sed -e "s;@sysconfdir@;$conf;" -e "s;@libdir@;$lib;" -e "s;@version@;$ENROOT_VERSION;" "$src/$f" >"$src/${f%.in}"
  done
  install -m 644 "$src"/conf/environ/*.env "$conf/environ.d"
  install -m 644 "$src"/conf/mounts/*.fstab "$conf/mounts.d"
  install -m 755 "$src"/conf/hooks/*.sh "$conf/hooks.d"
  install -m 755 "$src"/conf/hooks/extra/*.sh "$data/hooks.d"
  install -m 644 "$src"/conf/mounts/extra/*.fstab "$data/mounts.d"
  install -m 644 "$src/conf/enroot.conf" "$conf"
  install -m 644 "$src"/src/*.sh "$lib"
  install -m 755 "$src"/bin/enroot-{aufs2ovlfs,mksquashovlfs,mount,switchroot,nsenter} "$PREFIX/bin"
  install -m 755 "$src/enroot" "$PREFIX/bin/enroot" # last: its presence marks a complete install
}

install_pyxis() {
  local src
  src=$(source_of pyxis "$PYXIS_VERSION" "https://github.com/NVIDIA/pyxis/archive/refs/tags/v$PYXIS_VERSION.tar.gz")
  log "building pyxis $PYXIS_VERSION against $(dpkg-query -W -f='libslurm-dev ${Version}' libslurm-dev)"
  make -s -C "$src" >/dev/null
  install -d -m 755 "$PYXIS_DIR"
  install -m 755 "$src/spank_pyxis.so" "$PYXIS_DIR/spank_pyxis.so.tmp"
  mv -f "$PYXIS_DIR/spank_pyxis.so.tmp" "$PYXIS_DIR/spank_pyxis.so"
  echo "$PYXIS_VERSION" >"$PYXIS_DIR/VERSION"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
if [[ $("$PREFIX/bin/enroot" version 2>/dev/null) != "$ENROOT_VERSION" ]]; then
  install_enroot
fi
if [[ $(cat "$PYXIS_DIR/VERSION" 2>/dev/null) != "$PYXIS_VERSION" || ! -f $PYXIS_DIR/spank_pyxis.so ]]; then
  install_pyxis
fi
log "enroot $("$PREFIX/bin/enroot" version) at $PREFIX/bin/enroot; pyxis $PYXIS_VERSION at $PYXIS_DIR/spank_pyxis.so"
