#!/usr/bin/env bash
# Installs every Debian package that ipcsync's build, tests, demo and benchmarks need.
# Idempotent: packages already installed are skipped, and apt is not touched when none is missing.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config       # toolchain
  libboost-dev                           # Boost.Interprocess (admin segment; benchmark peer)
  libyaml-cpp-dev                        # configuration files
  libcli11-dev                           # command lines
  libspdlog-dev libfmt-dev               # logs
  libgtest-dev libgmock-dev              # tests
  libsqlite3-dev sqlite3                 # plugins' databases, the sync journal; the sqlite3 shell in tests
  nlohmann-json3-dev                     # JSON output and state files
  qt6-base-dev qt6-qpa-plugins libgl-dev # the admin console (offscreen platform for tests and screenshots)
  fonts-dejavu-core                      # a font for rendered screenshots
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "setup-deps: all ${#packages[@]} packages are installed"
  exit 0
fi

echo "setup-deps: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
