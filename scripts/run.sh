#!/usr/bin/env bash
# The README's two commands: `npm run demo` and `npm test`. Both set up first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "${1:-}"
export PATH="$HOME/.local/bin:$PATH"
case "${1:-}" in
  demo) shift; pnpm --silent cyclegan demo "$@" ;;
  test)
    shift
    pnpm --silent lint
    pnpm --silent check:deps
    pnpm --silent test:unit "$@"
    pnpm --silent test:kernels-unchecked
    pnpm --silent test:browser
    ;;
  *) echo "usage: scripts/run.sh demo|test" >&2; exit 2 ;;
esac
