#!/usr/bin/env bash
# Runs apptainer (or singularity) from a root filesystem newer than the host's, for hosts whose glibc is too
# old for the packaged apptainer. Apptainer refuses a plain chroot, so this enters a private mount namespace,
# makes the root a mount point, pivots into it and drops the host's view. Every top-level host directory that
# is not part of the operating system (/tmp, /work, /root, /home, /srv, a CI checkout under /check, ...) is
# bound at the same path, as are /var/tmp, /var/cache/build-image and the working directory, so files have one
# name on both sides. Nothing stays mounted on the host.
set -euo pipefail
name=$1; shift
root=${BUILD_IMAGE_APPTAINER_ROOT:?}
if [[ ${BUILD_IMAGE_SHIM_INNER:-} != 1 ]]; then
  export BUILD_IMAGE_SHIM_INNER=1 BUILD_IMAGE_SHIM_CWD=$PWD
  exec unshare -m --propagation private "$0" "$name" "$@"
fi
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
# The operating system comes from the new root; everything else at the top level is the host's data.
system=" bin boot dev etc lib lib32 lib64 libx32 lost+found old_root proc run sbin sys usr var "
binds=()
for d in /*; do
  [[ -d $d && ! -L $d && $system != *" ${d#/} "* ]] && binds+=("$d")
done
binds+=(/var/tmp /var/cache/build-image "$BUILD_IMAGE_SHIM_CWD")
IFS=: read -r -a extra <<<"${BUILD_IMAGE_SHIM_BINDS:-}"
binds+=("${extra[@]}")
for d in "${binds[@]}"; do
  [[ -n $d && -d $d ]] || continue
  mkdir -p "$root$d" 2>/dev/null || continue
  mount --rbind "$d" "$root$d"
done
cd "$root"
# The old root's mount point is this shim's own: removing a directory that is a mount point in another
# namespace detaches that mount (Linux >= 3.18), so a shared `.old` let concurrent shims unmount each other's.
old=.old-$$
mkdir "$old"
pivot_root . "$old"
umount -l "/$old"
rmdir "/$old" 2>/dev/null || true
cd "$BUILD_IMAGE_SHIM_CWD" 2>/dev/null || cd /
unset BUILD_IMAGE_SHIM_INNER BUILD_IMAGE_SHIM_CWD BUILD_IMAGE_SHIM_BINDS
exec "/usr/bin/$name" "$@"
