#!/usr/bin/env bash
# The web face against a live server: the OpenAPI document through openapi-spec-validator, the
# guide's curl, Python and Node.js examples and its webhook signature checks (Python, PHP) run
# for real, and the pages in headless Chromium (Playwright).
# Installs what it needs: Debian's chromium and php-cli, httpx and openapi-spec-validator from PyPI,
# playwright-core from npm (tests/browser/package-lock.json). Uses target/debug/panlink, which
# `cargo test` builds. Screenshots go to target/screenshots/ (not committed).
set -euo pipefail
cd "$(dirname "$0")/../.."
# Chromium, and a CJK font so that the screenshots show the Chinese pages as a person sees them.
if [ ! -x /usr/bin/chromium ] || [ ! -d /usr/share/fonts/opentype/noto ]; then
  (apt-get install -y chromium fonts-noto-cjk fonts-noto-color-emoji >/dev/null 2>&1 ||
    { apt-get update >/dev/null && apt-get install -y chromium fonts-noto-cjk fonts-noto-color-emoji >/dev/null; })
fi
# PHP runs the guide's webhook signature check.
command -v php >/dev/null || apt-get install -y php-cli >/dev/null 2>&1 ||
  { apt-get update >/dev/null && apt-get install -y php-cli >/dev/null; }
python3 -m pip install --quiet --disable-pip-version-check httpx openapi-spec-validator schemathesis
(cd tests/browser && npm ci --no-audit --no-fund --silent)

bin=target/debug/panlink
admin_token=web-test-admin-token-000000
# shellcheck source=../../scripts/procs.sh
. scripts/procs.sh
procs_init
start_mock "$bin"
PROCS_ADMIN_TOKEN=$admin_token start_server "$bin" PANLINK_KEYS_DEFAULT_RATE_PER_S=100000 \
  PANLINK_WEBHOOKS_ALLOW_PRIVATE=true PANLINK_WEBHOOKS_ALLOW_HTTP=true \
  PANLINK_KEYS_DEFAULT_BURST=100000
fuzz_key=$(PANLINK_DATA_DIR="$work/data" "$bin" keys create --name schemathesis --points 100000 --plan premium)

echo "== OpenAPI document (openapi-spec-validator)"
curl -sf "$base/openapi.json" -o "$work/openapi.json"
python3 -m openapi_spec_validator "$work/openapi.json"

echo "== schemathesis: generated requests to every operation; no 5xx, every response as documented"
# The checks on responses (server errors, status codes, content types, headers, body schemas).
# Whether the server accepts every schema-valid request is not checked: the document does not
# spell out every rule (e.g. a URL must be absolute), it states the types and the answers.
schemathesis run "$base/openapi.json" --url "$base" -H "X-API-Key: $fuzz_key" \
  -H "Authorization: Bearer $admin_token" --max-examples 25 --seed 20261201 \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
  > "$work/schemathesis.log" 2>&1 || { cat "$work/schemathesis.log"; exit 1; }
grep -E "generated|passed|failed" "$work/schemathesis.log" | tail -1

# Made after schemathesis: its stateful phase follows links it infers from the admin key list to
# the admin operations (PATCH, DELETE) with the admin token, so any key that existed while it ran
# may come out of it disabled, throttled or deleted.
key=$(PANLINK_DATA_DIR="$work/data" "$bin" keys create --name web-tests --points 1000)

echo "== the guide's code examples and the OpenAPI document's request examples, run against $base"
python3 tests/web/examples.py "$base" "$key" "$admin_token"

echo "== pages in headless Chromium"
PANLINK_BASE="$base" PANLINK_ADMIN_TOKEN=$admin_token PANLINK_KEY="$key" SCREENSHOTS="$PWD/target/screenshots" \
  node --test --test-concurrency=1 tests/browser/
