#!/usr/bin/env bash
# Builds the project and installs it for systemd. Idempotent: running it again replaces the
# application, refreshes links and the unit, and never overwrites an existing config.
#
#   sudo scripts/install.sh [--no-build]
#
# Layout (PREFIX=/usr/local):
#   $PREFIX/lib/soci-snapshotter-node/      package.json, dist/, proto/, production node_modules
#   $PREFIX/bin/soci, soci-snapshotter-grpc symlinks to dist/cli/main.js, dist/daemon/main.js
#   $UNIT_DIR/soci-snapshotter-grpc.service
#   $CONFIG_DIR/config.toml                 config/example-config.toml, only if absent
# DESTDIR installs into a staging root (packaging, tests); systemctl is then not called.
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX="${PREFIX:-/usr/local}"
DESTDIR="${DESTDIR:-}"
UNIT_DIR="${UNIT_DIR:-/etc/systemd/system}"
CONFIG_DIR="${CONFIG_DIR:-/etc/soci-snapshotter-grpc}"
APP_NAME=soci-snapshotter-node
BUILD=1
for arg in "$@"; do
  case "$arg" in
    --no-build) BUILD=0 ;;
    *) echo "install.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

app="$DESTDIR$PREFIX/lib/$APP_NAME"
bin="$DESTDIR$PREFIX/bin"
unit_dir="$DESTDIR$UNIT_DIR"
config_dir="$DESTDIR$CONFIG_DIR"

if [ "$BUILD" = 1 ]; then
  [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error
  npm run --silent build
fi
[ -f dist/daemon/main.js ] && [ -f dist/cli/main.js ] || { echo "install.sh: dist/ is not built (run without --no-build)" >&2; exit 1; }

# Staged next to the target and swapped in with renames, so a failed copy never leaves a
# half-installed application behind the running unit.
stage="$app.new.$$"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"
cp package.json package-lock.json "$stage/"
cp -a proto "$stage/proto"
mkdir -p "$stage/dist"
for d in dist/*; do
  case "$(basename "$d")" in test|bench|scripts) continue ;; esac
  cp -a "$d" "$stage/dist/"
done
# The native modules (better-sqlite3, fuse-native) are already built for this node here;
# copying them avoids a compiler and registry access at install time.
cp -a node_modules "$stage/node_modules"
(cd "$stage" && npm prune --omit=dev --offline --no-audit --no-fund --loglevel=error >/dev/null)
find "$stage/node_modules" -mindepth 1 -maxdepth 1 -type d -empty -delete
chmod 0755 "$stage/dist/daemon/main.js" "$stage/dist/cli/main.js"

mkdir -p "$(dirname "$app")"
if [ -e "$app" ]; then
  mv "$app" "$app.old.$$"
  mv "$stage" "$app"
  rm -rf "$app.old.$$"
else
  mv "$stage" "$app"
fi

mkdir -p "$bin"
ln -sfn "$PREFIX/lib/$APP_NAME/dist/daemon/main.js" "$bin/soci-snapshotter-grpc"
ln -sfn "$PREFIX/lib/$APP_NAME/dist/cli/main.js" "$bin/soci"

mkdir -p "$unit_dir"
sed "s#^ExecStart=/usr/local/bin/#ExecStart=$PREFIX/bin/#" systemd/soci-snapshotter-grpc.service > "$unit_dir/soci-snapshotter-grpc.service.tmp"
chmod 0644 "$unit_dir/soci-snapshotter-grpc.service.tmp"
mv "$unit_dir/soci-snapshotter-grpc.service.tmp" "$unit_dir/soci-snapshotter-grpc.service"

mkdir -p "$config_dir"
if [ ! -e "$config_dir/config.toml" ]; then
  install -m 0644 config/example-config.toml "$config_dir/config.toml"
  echo "install.sh: wrote $config_dir/config.toml (all defaults)"
else
  echo "install.sh: kept existing $config_dir/config.toml"
fi

# The links run `#!/usr/bin/env node`: systemd's PATH must find a Node 20.
if ! PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin command -v node >/dev/null; then
  echo "install.sh: warning: no node on systemd's default PATH; link it into /usr/local/bin" >&2
fi

if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
fi
echo "install.sh: installed $APP_NAME into $app"
echo "next: merge systemd/containerd-config.toml.example into /etc/containerd/config.toml, then"
echo "      systemctl enable --now soci-snapshotter-grpc && systemctl restart containerd"
