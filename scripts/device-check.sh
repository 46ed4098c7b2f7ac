#!/usr/bin/env bash
# The smoke payload on a real GPU: natively with the machine's PyTorch, then through the direct launcher's exec
# line (`apptainer exec --userns --nv ...`), and the ratio of each figure (container / native).
#
#   scripts/device-check.sh prepare   here, on a machine with Debian's mirror: fetches Debian's apptainer and
#                                     squashfs-tools packages and builds a tiny scratch SIF, all under
#                                     .tmp/device-check (git-ignored: carry it).
#   scripts/device-check.sh run       on the GPU machine (Ubuntu 24.04, root without CAP_SYS_RESOURCE, PyTorch at
#                                     $TORCH_PYTHON, no network). Writes native.json, container.json and
#                                     ratios.json to $OUT (or .tmp/device-check/out) and prints them.
#
# The image holds only a static busybox and glibc; `-B /usr:/usr -B /opt:/opt` brings the host's Python and
# PyTorch into the container's namespaces and `--nv` the driver libraries, so the comparison isolates what the
# container itself costs.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${DEVICE_CHECK_DIR:-.tmp/device-check}
TORCH_PYTHON=${TORCH_PYTHON:-/opt/torch/.venv/bin/python3}
PAYLOAD=assets/smoke/pytorch_smoke.py
log() { printf '[device-check] %s\n' "$*" >&2; }
die() { printf '[device-check] error: %s\n' "$*" >&2; exit 1; }

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

  # The scratch image: a static busybox as /bin/sh (apptainer's action scripts need one) and glibc from the
  # trixie root (2.41: newer than Ubuntu 24.04's 2.39, so the host's binaries find every symbol they need).
  local sandbox=/var/tmp/device-check-sandbox
  rm -rf "$sandbox" && mkdir -p "$sandbox"/{bin,lib/x86_64-linux-gnu,lib64,usr,opt,etc,tmp,proc,sys,dev,root}
  cp /bin/busybox "$sandbox/bin/busybox"
  for applet in sh ls cat env true echo; do ln -sf busybox "$sandbox/bin/$applet"; done
  for lib in libc.so.6 libm.so.6 libpthread.so.0 libdl.so.2 librt.so.1 libresolv.so.2 libutil.so.1; do
    cp -L "$root/lib/x86_64-linux-gnu/$lib" "$sandbox/lib/x86_64-linux-gnu/"
  done
  cp -L "$root/lib64/ld-linux-x86-64.so.2" "$sandbox/lib64/"
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$sandbox/etc/passwd"
  printf 'root:x:0:\n' >"$sandbox/etc/group"
  apptainer build --fakeroot --force "$DIR/scratch.sif" "$sandbox/" >&2
  rm -rf "$sandbox"
  log "prepared $DIR: $(du -sh "$DIR" | cut -f1) ($(ls "$DIR/debs" | tr '\n' ' '))"
}

run() {
  [[ -f $DIR/scratch.sif && -d $DIR/debs ]] || die "$DIR is incomplete: run '$0 prepare' on the build machine and carry $DIR"
  [[ -x $TORCH_PYTHON ]] || die "no PyTorch at $TORCH_PYTHON (set TORCH_PYTHON)"
  local out=${OUT:-$DIR/out}
  mkdir -p "$out"
  opt=/tmp/device-check-apptainer
  rm -rf "$opt" && mkdir -p "$opt"
  trap 'rm -rf "$opt"' EXIT
  for deb in "$DIR"/debs/*.deb; do dpkg -x "$deb" "$opt"; done
  export PATH=$opt/usr/bin:$opt/usr/sbin:$PATH
  # Libraries from the packages only where the host lacks them: the host's own are built for its glibc.
  local missing
  missing=$(ldd "$opt/usr/bin/apptainer" "$opt/usr/bin/unsquashfs" 2>/dev/null | grep '=> not found' || true)
  if [[ -n $missing ]]; then
    log "host lacks: $(echo "$missing" | awk '{print $1}' | sort -u | tr '\n' ' ') - using the packaged copies"
    export LD_LIBRARY_PATH=$opt/usr/lib/x86_64-linux-gnu:$opt/lib/x86_64-linux-gnu
  fi
  apptainer --version >&2 || die "the unpacked apptainer does not run"
  grep -E '^Cap(Eff|Prm)' /proc/self/status >&2
  nvidia-smi -L >&2 || log "nvidia-smi -L failed (the payload will say what it sees)"

  local gpus=${GPUS:-1}
  log "native: $TORCH_PYTHON $PAYLOAD --require-gpus $gpus"
  "$TORCH_PYTHON" "$PAYLOAD" --require-gpus "$gpus" | tail -1 >"$out/native.json"

  # The exec line the direct launcher builds (src/smoke/launch.ts execArgs), with the host userland bound in.
  local exec_args=(exec --nv --userns --pid -B /usr:/usr -B /opt:/opt -B "$PWD/$PAYLOAD:/build-image-smoke.py:ro"
    "$DIR/scratch.sif" "$TORCH_PYTHON" /build-image-smoke.py --require-gpus "$gpus")
  log "container: apptainer ${exec_args[*]}"
  apptainer "${exec_args[@]}" | tail -1 >"$out/container.json"

  # Container start latency, as the stage measures it: median of `exec --userns IMAGE true`.
  local t=()
  for _ in 1 2 3 4 5; do
    local s e
    s=$(date +%s%N); apptainer exec --userns "$DIR/scratch.sif" true 2>/dev/null; e=$(date +%s%N)
    t+=("$(awk -v ns=$((e - s)) 'BEGIN { printf "%.4f", ns / 1e9 }')")
  done
  printf '%s\n' "${t[@]}" | sort -n | sed -n 3p >"$out/start-latency.txt"

  "$TORCH_PYTHON" - "$out" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
native = json.loads((out / "native.json").read_text())
container = json.loads((out / "container.json").read_text())
container["start_latency_seconds"] = float((out / "start-latency.txt").read_text().strip())
keys = sorted(set(native.get("metrics", {})) & set(container.get("metrics", {})))
ratios = {k: container["metrics"][k] / native["metrics"][k] for k in keys if native["metrics"][k]}
for k in ("import_torch_seconds", "cuda_init_seconds"):
    if native.get(k) and container.get(k) is not None:
        ratios[k] = container[k] / native[k]
(out / "container.json").write_text(json.dumps(container))
(out / "ratios.json").write_text(json.dumps(ratios, indent=1))
print("native:   ", json.dumps(native))
print("container:", json.dumps(container))
print("ratios (container / native):")
for k, v in ratios.items():
    print(f"  {k:24s} {v:6.3f}   native {native.get('metrics', {}).get(k, native.get(k))}  container {container.get('metrics', {}).get(k, container.get(k))}")
print(f"  container start latency  {container['start_latency_seconds']:.3f} s (median of 5, exec --userns IMAGE true)")
PY
}

case ${1:-} in
  prepare) prepare ;;
  run) run ;;
  *) die "usage: $0 prepare|run" ;;
esac
