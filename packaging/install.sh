#!/bin/bash
# `make install`: syncer for production use on this machine.
#
#   PREFIX      the virtualenv, built from requirements.lock (hashes required)
#   BINDIR      where `syncer` goes on the PATH (a symlink into PREFIX)
#   SYSCONFDIR  policies/ and credentials/ (mode 0700), created if missing, never emptied
#   BASHCOMPDIR, ZSHCOMPDIR, FISHCOMPDIR  the completion scripts (zsh and fish only
#               where their directory exists)
#   PIP_INSTALL_OPTIONS  more options for pip install (the tests pass --no-compile)
#
# A second run changes nothing: the virtualenv is reused, pip installs only what
# differs from the lock, syncer is rebuilt only when its source changed, and files
# are rewritten only when their content differs. Nothing is enabled or started.
set -euo pipefail

: "${PREFIX:=/opt/syncer}" "${BINDIR:=/usr/local/bin}" "${SYSCONFDIR:=/etc/syncer}" "${PYTHON:=python3}"
: "${BASHCOMPDIR:=/usr/share/bash-completion/completions}"
: "${ZSHCOMPDIR:=/usr/share/zsh/vendor-completions}" "${FISHCOMPDIR:=/usr/share/fish/vendor_completions.d}"
SOURCE=$(cd "$(dirname "$0")/.." && pwd)
MANIFEST="$PREFIX/installed-files"  # what install put outside PREFIX: make uninstall removes exactly these

say() { echo "install: $*"; }

# Write stdin to $1 when its content differs (a rename into place); record it in the manifest.
put() {
  local target=$1 staged
  staged=$(mktemp)
  cat > "$staged"
  if ! cmp -s "$staged" "$target"; then
    install -m 644 "$staged" "$target.syncer-new"
    mv -f "$target.syncer-new" "$target"
    say "wrote $target"
  fi
  rm -f "$staged"
  remember "$target"
}

remember() {
  grep -qxF "$1" "$MANIFEST" 2>/dev/null || echo "$1" >> "$MANIFEST"
}

# restic from Debian's package.
if ! command -v restic >/dev/null; then
  say "installing restic from Debian's package"
  apt-get install -y restic >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y restic; }
fi

# The virtualenv (Debian ships venv in python3-venv).
if [ ! -x "$PREFIX/bin/python" ]; then
  "$PYTHON" -m venv "$PREFIX" 2>/dev/null || {
    rm -rf "$PREFIX"
    apt-get install -y python3-venv >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y python3-venv; }
    "$PYTHON" -m venv "$PREFIX"
  }
  say "created the virtualenv $PREFIX"
fi
[ -f "$MANIFEST" ] || : > "$MANIFEST"

# The locked set, every file checked against its hash; pip leaves what already matches.
"$PREFIX/bin/pip" install --quiet --disable-pip-version-check --require-hashes --no-deps ${PIP_INSTALL_OPTIONS:-} \
  -r "$SOURCE/requirements.lock"

# syncer itself, built from a copy (the checkout stays clean) when its source changed.
digest=$(cd "$SOURCE" && find syncer pyproject.toml -type f ! -name '*.pyc' -print0 | sort -z |
         xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
if [ "$(cat "$PREFIX/syncer-source" 2>/dev/null)" != "$digest" ]; then
  build=$(mktemp -d)
  trap 'rm -rf "$build"' EXIT
  cp -r "$SOURCE/syncer" "$SOURCE/pyproject.toml" "$SOURCE/README.md" "$build/"
  find "$build" -name __pycache__ -prune -exec rm -rf {} +
  "$PREFIX/bin/pip" install --quiet --disable-pip-version-check --no-deps --no-build-isolation --no-index \
    --force-reinstall ${PIP_INSTALL_OPTIONS:-} "$build"
  echo "$digest" > "$PREFIX/syncer-source"
  say "installed syncer $("$PREFIX/bin/syncer" --version | awk '{print $NF}') into $PREFIX"
fi

# On the PATH.
mkdir -p "$BINDIR"
if [ "$(readlink "$BINDIR/syncer" 2>/dev/null)" != "$PREFIX/bin/syncer" ]; then
  if [ -e "$BINDIR/syncer" ] && [ ! -L "$BINDIR/syncer" ]; then
    echo "install: $BINDIR/syncer exists and is not syncer's link; move it away first" >&2
    exit 1
  fi
  ln -sfn "$PREFIX/bin/syncer" "$BINDIR/syncer"
  say "linked $BINDIR/syncer"
fi
remember "$BINDIR/syncer"

# Configuration folders: created when missing, their contents never touched.
for folder in "$SYSCONFDIR" "$SYSCONFDIR/policies" "$SYSCONFDIR/credentials"; do
  if [ ! -d "$folder" ]; then
    mkdir -p -m "$([ "$folder" = "$SYSCONFDIR/credentials" ] && echo 700 || echo 755)" "$folder"
    say "created $folder"
  fi
done
if [ "$(stat -c %a "$SYSCONFDIR/credentials")" != 700 ]; then
  chmod 700 "$SYSCONFDIR/credentials"
  say "made $SYSCONFDIR/credentials mode 0700"
fi

# Shell completion: bash always, zsh and fish where they are installed.
mkdir -p "$BASHCOMPDIR"
"$PREFIX/bin/syncer" completion bash | put "$BASHCOMPDIR/syncer"
[ -d "$ZSHCOMPDIR" ] && "$PREFIX/bin/syncer" completion zsh | put "$ZSHCOMPDIR/_syncer"
[ -d "$FISHCOMPDIR" ] && "$PREFIX/bin/syncer" completion fish | put "$FISHCOMPDIR/syncer.fish"

cat <<EOF
install: syncer is installed ($BINDIR/syncer); nothing is enabled. Next:
  1. authorize the cloud services, e.g.
       syncer auth smugmug --credentials $SYSCONFDIR/credentials/smugmug.env --permissions modify
       syncer auth gitlab DATASET      (once its policy names the credentials file)
  2. write a policy per dataset in $SYSCONFDIR/policies/ (examples: $SOURCE/policies/examples/)
  3. check everything:          syncer doctor
  4. install the systemd units: syncer systemd install   (it prints how to enable them)
EOF
