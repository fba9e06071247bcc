#!/usr/bin/env bash
# container-smoke.sh: builds the relay's image from the unmodified Containerfile with podman and runs
# it the way the Helm chart does, then checks it from the outside (scripts/container-smoke.ts).
# `npm run test:container` runs it; .ci/run calls that; the pull-request workflow too.
#
#   1. podman and runc: used when present, else installed (Debian: apt-get install -y podman runc).
#      When neither is possible it says so and exits 1, or 0 with SKIP_CONTAINER_TESTS=1 (explicitly
#      accepting that the image goes untested on this machine).
#   2. The base image (docker.io/library/node:24-alpine) is used when present locally. Else, on machines
#      that reach no registry, the stand-in tool builds it: $MAKE_NODE_BASE_IMAGE when set, else
#      ../shared/tools/make-node-base-image next to the repository, else /work/shared/tools/. Where a
#      registry is reachable (GitHub Actions), pull it first: `podman pull docker.io/library/node:24-alpine`.
#      This script itself never pulls (podman build --pull=never).
#   3. podman build, with VERSION (package.json) and REVISION (git HEAD) as build args. The layer cache
#      is kept: a second run rebuilds only what changed.
#   4. scripts/container-smoke.ts runs the containers and checks them (node:test). Every container it
#      starts carries the label tokenplace-relay.smoke.run=<this run's id>; on any exit this script
#      removes exactly those, nothing else.
#
# Env: SMOKE_IMAGE (tag to build, default localhost/tokenplace-relay:smoke), SMOKE_BASE_IMAGE (default
# docker.io/library/node:24-alpine, passed as the NODE_IMAGE build arg), PODMAN (the podman binary),
# SMOKE_MAX_STARTUP_MS (see container-smoke.ts), SKIP_CONTAINER_TESTS, MAKE_NODE_BASE_IMAGE,
# SMOKE_BUILD_ONLY=1 (stop after the build: `npm run bench:pi` builds its image this way).
#
# This machine's podman needs runc (crun fails on cgroup v1) and explicit rlimits within the hard
# limits (the sandbox cannot raise them): both are passed on every podman call below.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)

PODMAN=${PODMAN:-podman}
BASE_IMAGE=${SMOKE_BASE_IMAGE:-docker.io/library/node:24-alpine}
IMAGE=${SMOKE_IMAGE:-localhost/tokenplace-relay:smoke}
RUN_ID="$(date +%Y%m%d%H%M%S)-$$"
# The one label of this run's containers: the cleanup below filters on it, container-smoke.ts sets it.
LABEL="tokenplace-relay.smoke.run=$RUN_ID"
t_start=$SECONDS

log() { printf '[container-smoke] %s\n' "$*" >&2; }
die() { printf '[container-smoke] ERROR: %s\n' "$*" >&2; exit 1; }
phase() { log "$1 done in $((SECONDS - $2)) s"; }

# ------------------------------------------------------------------------------------ 1. podman, runc
podman_works() { "$PODMAN" version >/dev/null 2>&1; }
find_runc() { command -v runc 2>/dev/null || { [ -x /usr/sbin/runc ] && echo /usr/sbin/runc; } || true; }

install_podman() {
  # Only the default podman is ours to install; a PODMAN that points elsewhere is the caller's choice.
  [ "$PODMAN" = podman ] || { log "PODMAN=$PODMAN does not run; not installing anything"; return 1; }
  command -v apt-get >/dev/null 2>&1 || { log "no apt-get on this machine to install podman with"; return 1; }
  local sudo_=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo_=(sudo -n); else
      log "not root and no password-less sudo: cannot apt-get install podman runc"; return 1
    fi
  fi
  log "installing podman and runc (apt-get install -y podman runc)"
  "${sudo_[@]}" apt-get update -qq >&2 || log "apt-get update failed; trying the install with the lists at hand"
  DEBIAN_FRONTEND=noninteractive "${sudo_[@]}" apt-get install -y -qq podman runc >&2
}

unavailable() {
  if [ "${SKIP_CONTAINER_TESTS:-}" = 1 ]; then
    log "SKIPPED: $1. The image was NOT built or tested (SKIP_CONTAINER_TESTS=1)."
    exit 0
  fi
  die "$1. The container smoke test cannot run here: install podman and runc (Debian: apt-get install -y podman runc), or set SKIP_CONTAINER_TESTS=1 to skip it explicitly."
}

t=$SECONDS
if ! podman_works || [ -z "$(find_runc)" ]; then
  install_podman || true
  podman_works || unavailable "podman is not available ($PODMAN version fails) and could not be installed"
  [ -n "$(find_runc)" ] || unavailable "runc is not available and could not be installed"
fi
runc=$(find_runc)
# rlimits: the hard limits of this shell, capped (podman's defaults exceed what this sandbox allows).
nofile=$(ulimit -Hn); { [ "$nofile" = unlimited ] || [ "$nofile" -gt 1048576 ]; } && nofile=1048576
nproc=$(ulimit -Hu); { [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
podman_args=(--runtime "$runc")
limit_args=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")
pm() { "$PODMAN" "${podman_args[@]}" "$@"; }
log "$("$PODMAN" --version), runtime $runc, uid $(id -u), ulimits nofile=$nofile nproc=$nproc"

# Whatever happens from here on, remove the containers this run started (and only those).
cleanup() {
  local ids
  ids=$(pm ps -aq --filter "label=$LABEL" 2>/dev/null || true)
  if [ -n "$ids" ]; then
    log "removing this run's containers: $(echo "$ids" | tr '\n' ' ')"
    # shellcheck disable=SC2086 # one id per word
    pm rm -f -t 0 $ids >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------------------------ 2. base image
find_tool() {
  if [ -n "${MAKE_NODE_BASE_IMAGE:-}" ]; then
    [ -x "$MAKE_NODE_BASE_IMAGE" ] || [ -f "$MAKE_NODE_BASE_IMAGE" ] ||
      die "MAKE_NODE_BASE_IMAGE=$MAKE_NODE_BASE_IMAGE does not exist"
    echo "$MAKE_NODE_BASE_IMAGE"; return
  fi
  local candidate
  for candidate in "$repo/../shared/tools/make-node-base-image" /work/shared/tools/make-node-base-image; do
    [ -f "$candidate" ] && { echo "$candidate"; return; }
  done
  return 0
}

t=$SECONDS
if pm image exists "$BASE_IMAGE"; then
  log "base image $BASE_IMAGE is present locally"
else
  tool=$(find_tool)
  [ -n "$tool" ] || die "the base image $BASE_IMAGE is not present locally, and no make-node-base-image tool was found \
(looked for \$MAKE_NODE_BASE_IMAGE, $repo/../shared/tools/make-node-base-image, /work/shared/tools/make-node-base-image). \
Where a registry is reachable: podman pull $BASE_IMAGE; offline: set MAKE_NODE_BASE_IMAGE to the tool's path."
  log "base image $BASE_IMAGE missing: building the local stand-in with $tool"
  # The tool may sit in a read-only copy of shared/: run it through bash, not as an executable.
  bash "$tool" >&2 || die "$tool failed (see above)"
  pm image exists "$BASE_IMAGE" || die "$tool ran but $BASE_IMAGE is still missing (it only makes docker.io/library/node:24-alpine)"
  phase "base image" "$t"
fi

# ------------------------------------------------------------------------------------ 3. build
t=$SECONDS
version=$(node -p 'require("./package.json").version')
# safe.directory: CI runs this with sudo in a checkout that another user owns.
revision=$(git -c safe.directory="$repo" rev-parse HEAD 2>/dev/null || echo unknown)
log "building $IMAGE (version $version, revision $revision) on $BASE_IMAGE"
build() {
  pm build --pull=never "${limit_args[@]}" "$@" \
    --build-arg "NODE_IMAGE=$BASE_IMAGE" --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
    -f Containerfile -t "$IMAGE" . >&2 || die "podman build failed (see above)"
}
build
# podman/buildah reuse a cached LABEL/ENV layer when only a --build-arg value changed
# (containers/buildah#5501), e.g. after a commit that changed no file of the image: the image would
# carry an earlier revision. Then build once more without the layer cache (the npm cache still helps).
built=$(pm image inspect --format '{{index .Config.Labels "org.opencontainers.image.version"}} {{index .Config.Labels "org.opencontainers.image.revision"}}' "$IMAGE")
if [ "$built" != "$version $revision" ]; then
  log "podman reused cached metadata layers ($built) although the build args changed: rebuilding with --no-cache"
  build --no-cache
fi
phase "build" "$t"
if [ "${SMOKE_BUILD_ONLY:-}" = 1 ]; then
  log "built $IMAGE (SMOKE_BUILD_ONLY=1: no container checks)"
  exit 0
fi

# ------------------------------------------------------------------------------------ 4. run and check
t=$SECONDS
status=0
SMOKE_IMAGE=$IMAGE SMOKE_BASE_IMAGE=$BASE_IMAGE SMOKE_VERSION=$version SMOKE_REVISION=$revision \
SMOKE_RUN_ID=$RUN_ID SMOKE_LABEL=$LABEL SMOKE_PODMAN=$PODMAN SMOKE_PODMAN_ARGS="${podman_args[*]}" SMOKE_RUN_ARGS="${limit_args[*]}" \
  node --import tsx --test-reporter=spec scripts/container-smoke.ts || status=$?
phase "container checks" "$t"
log "image: $(pm image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.1f MB", $1/1e6}'), base: $(pm image inspect --format '{{.Size}}' "$BASE_IMAGE" | awk '{printf "%.1f MB", $1/1e6}')"
[ "$status" = 0 ] || die "the container checks failed (exit $status)"
log "passed in $((SECONDS - t_start)) s"
