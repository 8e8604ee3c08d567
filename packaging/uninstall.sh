#!/bin/bash
# `make uninstall`: remove what `make install` created (the virtualenv in PREFIX and the
# files it lists in PREFIX/installed-files), never SYSCONFDIR nor the state directory.
set -euo pipefail

: "${PREFIX:=/opt/syncer}" "${SYSCONFDIR:=/etc/syncer}"
MANIFEST="$PREFIX/installed-files"

if [ ! -f "$MANIFEST" ] || [ ! -f "$PREFIX/pyvenv.cfg" ]; then
  echo "uninstall: $PREFIX holds no syncer installation (no $MANIFEST); nothing removed"
  exit 0
fi
while IFS= read -r file; do
  [ -n "$file" ] || continue
  if [ -L "$file" ] && [ "$(readlink "$file")" != "$PREFIX/bin/syncer" ]; then
    continue  # a link someone else made since
  fi
  if [ -e "$file" ] || [ -L "$file" ]; then
    rm -f "$file"
    echo "uninstall: removed $file"
  fi
done < "$MANIFEST"
rm -rf "$PREFIX"
echo "uninstall: removed $PREFIX"
echo "uninstall: kept $SYSCONFDIR (policies, credentials) and the state directory (/var/lib/syncer)"
