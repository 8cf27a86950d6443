#!/usr/bin/env bash
# The README's two commands: `npm run demo` and `npm test`. Both set up first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.local/bin:$PATH"
case "${1:-}" in
  demo) shift; pnpm -s cyclegan demo "$@" ;;
  test)
    shift
    pnpm -s lint
    pnpm -s check:deps
    pnpm -s test:unit "$@"
    ;;
  *) echo "usage: scripts/run.sh demo|test" >&2; exit 2 ;;
esac
