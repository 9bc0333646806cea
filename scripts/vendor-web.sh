#!/usr/bin/env bash
# Refreshes the third-party web assets embedded in the binary (src/web/vendor/) from their
# official npm packages, at the pinned versions below. npm checks each tarball against the
# registry's integrity hash; the SHA-256 of every copied file goes into src/web/vendor/VERSIONS,
# which a test compares with the files (so an edited or truncated asset fails the suite).
set -euo pipefail
cd "$(dirname "$0")/.."
swagger_version=5.32.0
redoc_version=2.5.0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "swagger-ui-dist@$swagger_version" "redoc@$redoc_version" >/dev/null)
mkdir -p "$work/swagger" "$work/redoc"
tar xzf "$work/swagger-ui-dist-$swagger_version.tgz" -C "$work/swagger"
tar xzf "$work/redoc-$redoc_version.tgz" -C "$work/redoc"
out=src/web/vendor
rm -rf "$out/swagger-ui" "$out/redoc"
mkdir -p "$out/swagger-ui" "$out/redoc"
for f in swagger-ui-bundle.js swagger-ui.css LICENSE NOTICE swagger-ui-bundle.js.LICENSE.txt; do
  cp "$work/swagger/package/$f" "$out/swagger-ui/$f"
done
for f in bundles/redoc.standalone.js bundles/redoc.standalone.js.LICENSE.txt LICENSE; do
  cp "$work/redoc/package/$f" "$out/redoc/$(basename "$f")"
done
# The bundles end with a source-map comment; the maps are not shipped.
sed -i '/^\/\/# sourceMappingURL=/d' "$out/swagger-ui/swagger-ui-bundle.js" "$out/redoc/redoc.standalone.js"
sed -i 's|/\*# sourceMappingURL=[^*]*\*/||' "$out/swagger-ui/swagger-ui.css"
# ReDoc's sidebar footer loads its logo from a CDN; the pages must work offline and contact no
# other origin, so the image source becomes an empty data URL (the component hides a broken image).
sed -i 's|https://cdn.redoc.ly/redoc/logo-mini.svg|data:,|' "$out/redoc/redoc.standalone.js"
{
  echo "# npm package versions and SHA-256 of the files embedded from them (scripts/vendor-web.sh)."
  echo "swagger-ui-dist $swagger_version"
  echo "redoc $redoc_version"
  (cd "$out" && sha256sum swagger-ui/* redoc/*)
} > "$out/VERSIONS"
echo "vendored swagger-ui-dist $swagger_version and redoc $redoc_version into $out"
