#!/usr/bin/env bash
# The user-agent benchmark with both candidates: fetches uap-core's regexes.yaml (the rule set
# uaparser reads; npm package uap-core, pinned) into target/ and runs benches/user_agents.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=target/uap-core
if [ ! -f "$dir/package/regexes.yaml" ]; then
  mkdir -p "$dir"
  (cd "$dir" && npm pack --silent uap-core@0.18.0 > /dev/null && tar xzf uap-core-0.18.0.tgz)
fi
UAP_REGEXES="$PWD/$dir/package/regexes.yaml" cargo bench --bench user_agents -- "$@"
