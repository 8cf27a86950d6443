#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine with Node 20 and npm:
# pinned pnpm, dependencies, build, and a WebGPU adapter. Each step is
# skipped when already done, so a second run takes seconds.
#
#   bash scripts/setup.sh                    # what `npm run demo` / `npm test` call
#   bash scripts/setup.sh --install-system   # allow installing Mesa (lavapipe) when no adapter is found
#   CG_USE_SUDO=1 bash scripts/setup.sh      # same, through sudo, for non-root users
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=12.4.2
INSTALL_SYSTEM=0
[[ "${1:-}" == "--install-system" || "${CG_INSTALL_SYSTEM:-}" == 1 ]] && INSTALL_SYSTEM=1
step() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# 1. Node
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if ((node_major < 20)); then
  echo "Node.js >= 20 is required (found: $(node --version 2>/dev/null || echo none))." >&2
  exit 1
fi

# 2. pnpm, pinned
if [[ "$(pnpm --version 2>/dev/null || true)" != "$PNPM_VERSION" ]]; then
  step "installing pnpm@$PNPM_VERSION"
  if [[ $(id -u) == 0 ]]; then npm install -g "pnpm@$PNPM_VERSION" >/dev/null
  else npm install -g --prefix "$HOME/.local" "pnpm@$PNPM_VERSION" >/dev/null; export PATH="$HOME/.local/bin:$PATH"; fi
fi

# 3. Dependencies (pnpm skips the work when node_modules matches the lockfile)
stamp=node_modules/.cg-install-stamp
lockhash=$(sha256sum pnpm-lock.yaml package.json packages/*/package.json apps/*/package.json bench/package.json test/package.json | sha256sum | cut -c1-16)
if [[ ! -f $stamp || "$(cat $stamp)" != "$lockhash" ]]; then
  step "installing dependencies"
  pnpm install --frozen-lockfile --reporter=silent
  echo "$lockhash" >"$stamp"
fi

# 4. Build (tsc -b is incremental)
step "building"
pnpm --silent build

# 5. Browsers for `pnpm test:browser`: Debian's own chromium and firefox-esr, never a downloaded build.
# Only when missing, and only as root or with permission (like Mesa below); without, a note and go on.
browsers=()
[[ -x /usr/bin/chromium ]] || browsers+=(chromium)
[[ -x /usr/bin/firefox-esr ]] || browsers+=(firefox-esr)
if ((${#browsers[@]})); then
  if ((INSTALL_SYSTEM == 1)) || [[ $(id -u) == 0 || "${CG_USE_SUDO:-}" == 1 ]]; then
    step "installing ${browsers[*]} (Debian packages) for the browser tests"
    SUDO=""
    [[ $(id -u) != 0 ]] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${browsers[@]}" >/dev/null
  else
    echo "[setup] the browser tests need ${browsers[*]}: run bash scripts/setup.sh --install-system (as root) or CG_USE_SUDO=1 bash scripts/setup.sh" >&2
  fi
fi

# 6. A WebGPU adapter
if node scripts/check-adapter.mjs --quiet; then
  exit 0
fi
if ((INSTALL_SYSTEM == 0)) && [[ $(id -u) != 0 && "${CG_USE_SUDO:-}" != 1 ]]; then
  echo "No WebGPU adapter, and no permission to install one. Run: bash scripts/setup.sh --install-system (as root) or CG_USE_SUDO=1 bash scripts/setup.sh" >&2
  node scripts/check-adapter.mjs || true
  exit 1
fi
SUDO=""
[[ $(id -u) != 0 ]] && SUDO=sudo
step "no WebGPU adapter: installing Mesa 25 (lavapipe, a CPU Vulkan driver) from bookworm-backports"
mirror=$(grep -hoE '^(URIs:|deb) *\S*debian\S*' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
  grep -v security | head -1 | awk '{print $2}')
if [[ -z "$mirror" ]]; then
  echo "Could not find the Debian mirror in /etc/apt/sources.list*; add bookworm-backports for it by hand (see README)." >&2
  exit 1
fi
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$mirror" |
    $SUDO tee /etc/apt/sources.list.d/cg-backports.sources >/dev/null
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports \
  mesa-vulkan-drivers libvulkan1 >/dev/null
node scripts/check-adapter.mjs
