#!/bin/bash
# Download Debian 13 (trixie)'s restic package and extract its static binary into
# DESTINATION (default .cache/restic-0.18), without touching the machine's apt
# configuration: apt runs with a private state, sources and cache directory whose one
# source is the Debian mirror already configured in /etc/apt/sources.list.d/.
set -euo pipefail
destination=${1:-.cache/restic-0.18}
suite=${SUITE:-trixie}
if [ -x "$destination/restic" ]; then exit 0; fi
mkdir -p "$destination"
work=$(cd "$destination" && pwd)/apt
rm -rf "$work"
mkdir -p "$work"/{state/lists/partial,cache/archives/partial,etc/sources.list.d,etc/preferences.d,download}
# The mirror and keyring of the configured Debian source (deb822 or one-line format).
mirror=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list \
           /etc/apt/sources.list 2>/dev/null | grep -oE 'https?://[^ ]*/debian/?( |$)' | head -n1 | tr -d ' ' || true)
mirror=${mirror:-http://deb.debian.org/debian}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
cat > "$work/etc/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: $suite
Components: main
Signed-By: $keyring
SOURCES
options=(-o "Dir::State=$work/state" -o "Dir::State::status=/var/lib/dpkg/status"
         -o "Dir::Etc::sourcelist=/dev/null" -o "Dir::Etc::sourceparts=$work/etc/sources.list.d"
         -o "Dir::Etc::preferencesparts=$work/etc/preferences.d" -o "Dir::Cache=$work/cache"
         -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
echo "fetching restic from $mirror $suite (private apt state in $work)"
apt-get "${options[@]}" update -qq
(cd "$work/download" && apt-get "${options[@]}" download "restic/$suite")
dpkg-deb -x "$work"/download/restic_*.deb "$work/extracted"
install -m 0755 "$work/extracted/usr/bin/restic" "$destination/restic"
rm -rf "$work"
"$destination/restic" version
