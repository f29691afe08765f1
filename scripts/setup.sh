#!/usr/bin/env bash
# Idempotent set-up on Debian 12: system packages the project and its tests use, npm
# dependencies and the build. Safe to run again; it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  libfuse2 fuse3              # fuse-native links libfuse2; fusermount for unmounts
  patch                       # postinstall patches fuse-native (third_party/fuse-native)
  containerd runc             # the runtime we plug into (containerd 1.6 on Debian 12)
  docker-registry             # real registry for tests and the demo
  tar gzip pigz zstd          # layer tools used by tests and the demo
  flatbuffers-compiler        # flatc: schema-generic zTOC reader in tests
  zlib1g-dev gcc              # reference zran program compiled by tests
  busybox-static              # tiny userland for test and demo images
  curl jq openssl apache2-utils iproute2 attr time  # tests and benches: HTTP, TLS CA, htpasswd, netns, xattrs, peak RSS
  python3 make g++            # node-gyp builds better-sqlite3 from source
  systemd                     # systemd-analyze verifies the unit in tests
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi


[ -e /dev/fuse ] || modprobe fuse 2>/dev/null || true

# The fuse-native patch and the postinstall that applies it count as much as the lock file.
stamp=node_modules/.setup-stamp
want="$(cat package-lock.json third_party/fuse-native/nanosecond-times.patch scripts/patch-fuse-native.mjs | sha256sum | cut -d' ' -f1) $(node --version)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: npm ci (builds fuse-native from source with nanosecond times)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

echo "setup: build"
npm run --silent build
