#!/usr/bin/env bash
# Install a headless Chromium for tests/report/test_report_browser.py (the Snakemake report opened in a real browser;
# skipped without it). Debian's chromium-headless-shell (no GTK/X11: the smaller of the two Chromium packages) and
# one font for it to draw text with; playwright (the `test` extra of pyproject.toml) drives it. Needs root;
# idempotent: a no-op when both are installed.
#
#   .ci/browser/install.sh      # then: chromium-headless-shell --version
set -euo pipefail

PACKAGES=(chromium-headless-shell fonts-dejavu-core)

say() { echo "browser-ci: $*"; }

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  compgen -G "/var/lib/apt/lists/*_Packages" >/dev/null || apt-get update -qq
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    apt-get update -qq  # stale package lists (a security update replaced the version they name): refresh, retry
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi
say "$(chromium-headless-shell --version)"
