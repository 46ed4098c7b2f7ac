#!/usr/bin/env bash
# The smoke payload on a real GPU: natively with the machine's PyTorch, then inside a SIF built there that holds
# that same PyTorch, and the ratio of each figure (image / native).
#
#   scripts/device-check.sh prepare   here, on a machine with Debian's mirror: fetches Debian's apptainer and
#                                     squashfs-tools packages and makes a tiny base tree (static busybox, glibc),
#                                     all under .tmp/device-check (git-ignored: carry it).
#   scripts/device-check.sh run       on the GPU machine (root, PyTorch at $TORCH_PYTHON, no network). Builds
#                                     .tmp/device-check/torch.sif from the base: the Python interpreter and
#                                     standard library, the venv's torch and every distribution it requires
#                                     (with their extras), and the system libraries they link against (ldd).
#                                     Nothing of the host is bound in at run time beyond what `--nv` injects (the
#                                     driver). Writes native.json, container.json, ratios.json and image.json to
#                                     $OUT (or .tmp/device-check/out) and prints them.
#   scripts/device-check.sh image     only the image build (TORCH_DIST=pip TORCH_PYTHON=<a venv's python> tries it
#                                     on any machine).
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=$(realpath -m "${DEVICE_CHECK_DIR:-.tmp/device-check}")
TORCH_PYTHON=${TORCH_PYTHON:-/opt/torch/.venv/bin/python3}
TORCH_DIST=${TORCH_DIST:-torch}
PAYLOAD=assets/smoke/pytorch_smoke.py
IMAGE=$DIR/torch.sif
log() { printf '[device-check] %s\n' "$*" >&2; }
die() { printf '[device-check] error: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

prepare() {
  local root=${BUILD_IMAGE_APPTAINER_ROOT:-/var/lib/build-image/apptainer-root}
  [[ -d $root ]] || die "needs the trixie root with sid sources that scripts/provision.sh makes ($root)"
  mkdir -p "$DIR/debs"
  # apt-get download inside the root: it has the sid source apptainer comes from.
  local stage=/var/tmp/device-check-debs
  rm -rf "$root$stage" && mkdir -p "$root$stage"
  chroot "$root" sh -c "cd $stage && apt-get -qq -o Acquire::Check-Valid-Until=false update && \
    apt-get -qq -o Acquire::Check-Valid-Until=false download apptainer squashfs-tools liblzo2-2 libseccomp2 libsqlite3-0 liblz4-1 libzstd1" >&2
  cp "$root$stage"/*.deb "$DIR/debs/"
  rm -rf "$root$stage"

  # The base tree: a static busybox as /bin/sh (apptainer's action scripts need one) and glibc from the trixie
  # root (2.41: newer than Ubuntu 24.04's 2.39, so the host's binaries find every symbol they need).
  local sandbox=/var/tmp/device-check-sandbox
  rm -rf "$sandbox" && mkdir -p "$sandbox"/{bin,lib/x86_64-linux-gnu,lib64,usr,opt,etc,tmp,proc,sys,dev,root}
  cp /bin/busybox "$sandbox/bin/busybox"
  for applet in sh ls cat env true echo; do ln -sf busybox "$sandbox/bin/$applet"; done
  for lib in $GLIBC; do cp -L "$root/lib/x86_64-linux-gnu/$lib" "$sandbox/lib/x86_64-linux-gnu/"; done
  cp -L "$root/lib64/ld-linux-x86-64.so.2" "$sandbox/lib64/"
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$sandbox/etc/passwd"
  printf 'root:x:0:\n' >"$sandbox/etc/group"
  tar -C "$sandbox" -cf "$DIR/base.tar" .
  rm -rf "$sandbox"
  log "prepared $DIR: $(du -sh "$DIR" | cut -f1) ($(ls "$DIR/debs" | tr '\n' ' '))"
}
GLIBC='libc.so.6 libm.so.6 libpthread.so.0 libdl.so.2 librt.so.1 libresolv.so.2 libutil.so.1'

# Prints what the image needs from this machine's Python, one absolute path per line: the interpreter, its
# standard library, the venv's pyvenv.cfg and bin/, and the site-packages entries of $TORCH_DIST and of every
# distribution it requires (extras left out), found through the distributions' own RECORD files.
python_paths() {
  "$TORCH_PYTHON" - "$TORCH_DIST" <<'PY'
import importlib.metadata as md, os, re, sys, sysconfig
exe = os.path.realpath(sys.executable)
paths = {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]}
if sys.prefix != sys.base_prefix:
    paths |= {os.path.join(sys.prefix, "pyvenv.cfg"), os.path.join(sys.prefix, "bin")}
try:  # requirement strings with markers and extras; a crude split where packaging is absent
    from packaging.requirements import Requirement
except ImportError:
    Requirement = None

def requirements(dist, extras):
    for text in dist.requires or []:
        if Requirement is None:
            if "extra ==" not in text:
                yield re.match(r"[A-Za-z0-9._-]+", text).group(0), set()
            continue
        req = Requirement(text)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras or {""}):
            yield req.name, set(req.extras)

seen, todo = {}, [(sys.argv[1], set())]
while todo:
    name, extras = todo.pop()
    key = re.sub(r"[-_.]+", "-", name).lower()
    if key in seen and extras <= seen[key]:
        continue
    seen[key] = seen.get(key, set()) | extras
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        continue
    todo.extend(requirements(dist, seen[key]))
    # Each file the distribution installed (namespace folders such as nvidia/ hold other distributions too).
    for f in dist.files or []:
        if f.parts[0] != "..":
            paths.add(os.path.normpath(str(dist.locate_file(f))))
print(exe)  # first: the caller runs ldd on it
for p in sorted(paths - {exe}):
    if os.path.exists(p):
        print(p)
print(f"[device-check] {len(seen)} distributions from {sys.argv[1]}", file=sys.stderr)
PY
}

# Builds $IMAGE from the base: the Python paths, and the system libraries the interpreter and every shared object
# in it link against (glibc comes from the base; the driver from --nv), put into a sandbox directory that apptainer
# packs. Not a definition file with %files: that unpacks the base inside a user namespace, which as root needs
# either CAP_SYS_RESOURCE or newuidmap, and the GPU machine has neither.
image() {
  [[ -f $DIR/base.tar ]] || die "$DIR/base.tar is missing: run '$0 prepare' on the build machine and carry $DIR"
  [[ -x $TORCH_PYTHON ]] || die "no PyTorch at $TORCH_PYTHON (set TORCH_PYTHON)"
  local root=$DIR/sandbox started
  started=$(now)
  rm -rf "$root" && mkdir -p "$root" && tar -C "$root" -xf "$DIR/base.tar"
  python_paths >"$DIR/paths.txt"
  sed 's|^/||' "$DIR/paths.txt" | tar -C / -cf - -T - | tar -C "$root" -xf -
  mkdir -p "$root/usr/lib/x86_64-linux-gnu"
  # Every shared object copied and the interpreter, through ldd; what resolves inside the copied trees is there.
  local skip=" ${GLIBC} ld-linux-x86-64.so.2 linux-vdso.so.1 " libs=$root/usr/lib/x86_64-linux-gnu
  { find "$root" -type f \( -name '*.so' -o -name '*.so.*' \) -print0; printf '%s\0' "$(head -1 "$DIR/paths.txt")"; } |
    xargs -0 -r -P 8 -n 64 ldd 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | sort -u |
    while read -r soname resolved; do
      [[ $skip == *" $soname "* || $soname == libcuda.so* || $soname == libnvidia-* ]] && continue
      [[ -e $root$resolved || -e $libs/$soname ]] && continue
      cp -L "$resolved" "$libs/$soname"
    done
  cp "$PAYLOAD" "$root/build-image-smoke.py"
  log "copied $(du -sh "$root" | cut -f1) in $(since "$started") s; building $IMAGE"
  local built
  built=$(now)
  apptainer build --force "$IMAGE" "$root/" >&2
  log "built $IMAGE ($(du -h "$IMAGE" | cut -f1)) in $(since "$built") s"
  printf '{"copied":"%s","image_bytes":%s,"copy_s":%s,"build_s":%s}\n' "$(du -sh "$root" | cut -f1)" \
    "$(stat -c %s "$IMAGE")" "$(awk -v a="$started" -v b="$built" 'BEGIN { printf "%.1f", b - a }')" "$(since "$built")" >"$DIR/image.json"
  rm -rf "$root"
}

unpack_apptainer() {
  [[ -d $DIR/debs ]] || die "$DIR/debs is missing: run '$0 prepare' on the build machine and carry $DIR"
  local opt=/tmp/device-check-apptainer
  rm -rf "$opt" && mkdir -p "$opt"
  for deb in "$DIR"/debs/*.deb; do dpkg -x "$deb" "$opt"; done
  export PATH=$opt/usr/bin:$opt/usr/sbin:$PATH
  # The package's apptainer looks for its configuration relative to its binary.
  mkdir -p "$opt/usr/etc" && ln -s "$opt/etc/apptainer" "$opt/usr/etc/apptainer" && ln -s ../var "$opt/usr/var"
  mkdir -p "$opt/usr/lib/etc" && ln -s "$opt/etc/apptainer" "$opt/usr/lib/etc/apptainer" && ln -s ../../var "$opt/usr/lib/var"
  # Libraries from the packages only where the host lacks them: the host's own are built for its glibc.
  local missing
  missing=$(ldd "$opt/usr/bin/apptainer" "$opt/usr/bin/unsquashfs" "$opt/usr/bin/mksquashfs" 2>/dev/null | grep '=> not found' || true)
  if [[ -n $missing ]]; then
    # Installed where the loader looks: apptainer runs unsquashfs with a clean environment (no LD_LIBRARY_PATH).
    log "host lacks: $(echo "$missing" | awk '{print $1}' | sort -u | tr '\n' ' ') - installing the packaged copies in /usr/local/lib"
    for lib in $(echo "$missing" | awk '{print $1}' | sort -u); do cp -L "$(find "$opt" -name "$lib" | head -1)" /usr/local/lib/; done
    ldconfig
  fi
  apptainer --version >&2 || die "the unpacked apptainer does not run"
}

run() {
  local out=${OUT:-$DIR/out}
  mkdir -p "$out"
  unpack_apptainer
  grep -E '^Cap(Eff|Prm)' /proc/self/status >&2
  nvidia-smi -L >&2 || log "nvidia-smi -L failed (the payload will say what it sees)"
  local gpus=${GPUS:-1}
  log "native: $TORCH_PYTHON $PAYLOAD --require-gpus $gpus"
  "$TORCH_PYTHON" "$PAYLOAD" --require-gpus "$gpus" | tail -1 >"$out/native.json"
  [[ ${REUSE_IMAGE:-} == 1 && -f $IMAGE ]] || image
  cp "$DIR/image.json" "$out/image.json"
  # Root without CAP_SYS_RESOURCE needs `exec --userns`, and without squashfuse apptainer then unpacks the image
  # inside a container of its own, which there fails on the same capability. So the image's squashfs partition
  # is unpacked here, as apptainer would, and the sandbox run.
  local flags=(--nv --userns) s offset unpacked=$DIR/unpacked
  offset=$(apptainer sif list "$IMAGE" | awk -F'|' '/Squashfs/ { split($4, r, "-"); gsub(/ /, "", r[1]); print r[1] }')
  s=$(now)
  rm -rf "$unpacked" && unsquashfs -q -n -o "$offset" -d "$unpacked" "$IMAGE" >/dev/null
  log "unpacked the image's squashfs (offset $offset) in $(since "$s") s"
  # The exec line the direct launcher builds (src/smoke/launch.ts): the image's own Python and PyTorch.
  log "image: apptainer exec ${flags[*]} $unpacked $TORCH_PYTHON /build-image-smoke.py --require-gpus $gpus"
  s=$(now)
  apptainer exec "${flags[@]}" "$unpacked" "$TORCH_PYTHON" /build-image-smoke.py --require-gpus "$gpus" | tail -1 >"$out/container.json"
  since "$s" >"$out/exec-wall.txt"
  report "$out"
}

report() {
  "$TORCH_PYTHON" - "$1" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
native = json.loads((out / "native.json").read_text())
container = json.loads((out / "container.json").read_text())
container["exec_wall_seconds"] = float((out / "exec-wall.txt").read_text().strip())
keys = sorted(set(native.get("metrics", {})) & set(container.get("metrics", {})))
ratios = {k: container["metrics"][k] / native["metrics"][k] for k in keys if native["metrics"][k]}
for k in ("import_torch_seconds", "cuda_init_seconds"):
    if native.get(k) and container.get(k) is not None:
        ratios[k] = container[k] / native[k]
(out / "container.json").write_text(json.dumps(container))
(out / "ratios.json").write_text(json.dumps(ratios, indent=1))
print("image:    ", (out / "image.json").read_text().strip())
print("native:   ", json.dumps(native))
print("container:", json.dumps(container))
print("ratios (image / native):")
for k, v in ratios.items():
    print(f"  {k:24s} {v:6.3f}   native {native.get('metrics', {}).get(k, native.get(k))}  image {container.get('metrics', {}).get(k, container.get(k))}")
print(f"  exec wall time           {container['exec_wall_seconds']:.1f} s (the payload's run, start included)")
PY
}

case ${1:-} in
  prepare) prepare ;;
  image) image ;;
  run) run ;;
  *) die "usage: $0 prepare|image|run" ;;
esac
