#!/usr/bin/env bash
# Refreshes web/vendor/utrecht/ from the package pinned in web/package-lock.json: installs
# exactly the locked versions (npm ci) and copies the component CSS and its licence verbatim.
# To move to a new version: change the pin in package.json, run
# `npm install --package-lock-only --omit-lockfile-registry-resolved`, then this script,
# and review the diff of the vendored CSS.
set -euo pipefail

web_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
package_dir="$web_dir/node_modules/@utrecht/component-library-css"
vendor_dir="$web_dir/vendor/utrecht"

cd "$web_dir"
npm ci --no-audit --no-fund

version="$(node -p 'require(process.argv[1]).version' "$package_dir/package.json")"
licence_file=""
for name in LICENSE.md LICENSE LICENCE.md LICENCE; do
    if [[ -f "$package_dir/$name" ]]; then
        licence_file="$package_dir/$name"
        break
    fi
done
if [[ -z "$licence_file" ]]; then
    echo "refresh-vendor: no licence file in $package_dir" >&2
    exit 1
fi

mkdir -p "$vendor_dir"
cp "$package_dir/dist/index.css" "$vendor_dir/component-library.css"
cp "$licence_file" "$vendor_dir/LICENSE.md"
echo "copied @utrecht/component-library-css $version to ${vendor_dir#"$web_dir"/}"
