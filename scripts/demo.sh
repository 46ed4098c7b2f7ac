#!/usr/bin/env bash
# `npm run demo`: the pipeline on embedded local services. Starts a real OCI registry on loopback, pushes a
# tiny busybox image to it, then builds twice with the CLI (from the registry image and from
# examples/pi.def), prints both summaries and runs the result; then runs the whole pipeline three times as a
# nightly (scripts/demo-pipeline.mjs: a new tag followed, SIF and .sqsh, a chrooted sshd, pyxis on a local Slurm,
# promotion, docs pull request; the second run is skipped as unchanged). Leaves nothing running.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if [[ $(id -u) -eq 0 ]]; then bash scripts/provision.sh; fi
[[ -d node_modules ]] || npm ci --no-audit --no-fund
[[ -f dist/cli.js ]] || npm run -s bundle

work=$(mktemp -d /tmp/build-image-demo.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
  # The registry ends by our SIGTERM: its status (143) is not the demo's.
  if [[ -n ${registry_pid:-} ]]; then kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
echo "== registry on 127.0.0.1:$port"

# A busybox image made without Docker: umoci builds the OCI layout, skopeo pushes it.
(
  cd "$work"
  umoci init --layout oci >/dev/null
  umoci new --image oci:1.0 >/dev/null
  umoci unpack --rootless --image oci:1.0 bundle >/dev/null
  mkdir -p bundle/rootfs/bin
  cp /bin/busybox bundle/rootfs/bin/busybox
  for applet in sh cat echo mkdir ls; do ln -s busybox "bundle/rootfs/bin/$applet"; done
  umoci repack --image oci:1.0 bundle >/dev/null
  umoci config --image oci:1.0 --config.cmd /bin/sh >/dev/null
  skopeo copy -q --dest-tls-verify=false oci:oci:1.0 "docker://127.0.0.1:$port/demo/busybox:1.0"
)
echo "== pushed 127.0.0.1:$port/demo/busybox:1.0"

cli="node $root/dist/cli.js"
cd "$work"
echo
echo "== build-image build --source docker://127.0.0.1:$port/demo/busybox:1.0"
$cli build --name busybox --source "docker://127.0.0.1:$port/demo/busybox:1.0" --registry-insecure

echo
echo "== build-image build --definition examples/pi.def"
cp "$root/examples/pi.def" .
$cli build --name pi --definition pi.def --build-arg "REGISTRY=127.0.0.1:$port" --registry-insecure \
  --label org.opencontainers.image.title=pi-demo

echo
echo "== apptainer run pi.sif"
userns=()
# Root without every capability must exec with --userns (the action decides the same way).
all=$(( (1 << ($(cat /proc/sys/kernel/cap_last_cap) + 1)) - 1 ))
eff=$(( 16#$(awk '/^CapEff/ {print $2}' /proc/self/status) ))
if [[ $(id -u) -eq 0 ]] && (( (eff & all) != all )); then userns=(--userns); fi
apptainer run "${userns[@]}" pi.sif 2>/dev/null

echo
echo "== build-image inspect pi.sif (labels)"
$cli inspect pi.sif | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).labels))'

echo
echo "== the whole pipeline: build-image all, staged to a loopback sshd, docs PR on a local GitHub API"
cd "$root"
node scripts/demo-pipeline.mjs
