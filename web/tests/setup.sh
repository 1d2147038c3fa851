#!/usr/bin/env bash
# What the browser tests need, installed when missing: Debian's Chromium (no browser
# download by a test tool) and the npm packages of web/package-lock.json (`npm ci`).
# Called by the browser test itself, so `cargo test --locked` works on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's chromium for the browser tests" >&2
    (apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; })
  else
    echo "the browser tests need Chromium at /usr/bin/chromium: sudo apt-get install chromium" >&2
    exit 1
  fi
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "the browser tests need Node.js and npm (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi

# Reinstall when the lock file changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "installing the browser-test packages from web/package-lock.json" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
