#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine with Node 20 and npm:
# pinned pnpm, dependencies, build, a core WebGPU adapter and, for the tests,
# Debian's browsers. Each step is skipped when already done, so a second run
# takes seconds. Each purpose installs only what it needs.
#
#   bash scripts/setup.sh demo               # what `npm run demo` calls: no browsers
#   bash scripts/setup.sh test               # what `npm test` calls (the default): also chromium, firefox-esr
#   bash scripts/setup.sh test --install-system   # allow system installs when not root
#   CG_USE_SUDO=1 bash scripts/setup.sh      # same, through sudo, for non-root users
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=12.4.2
INSTALL_SYSTEM=0
PURPOSE=test
for arg in "$@"; do
  case "$arg" in
    demo | test) PURPOSE=$arg ;;
    "") ;;
    --install-system) INSTALL_SYSTEM=1 ;;
    *) echo "usage: scripts/setup.sh [demo|test] [--install-system]" >&2; exit 2 ;;
  esac
done
[[ "${CG_INSTALL_SYSTEM:-}" == 1 ]] && INSTALL_SYSTEM=1
may_install() { ((INSTALL_SYSTEM == 1)) || [[ $(id -u) == 0 || "${CG_USE_SUDO:-}" == 1 ]]; }
SUDO=""
[[ $(id -u) != 0 ]] && SUDO=sudo
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

# 5. A core WebGPU adapter. check-adapter judges what the adapter is, not whether one exists: Dawn's
# OpenGL compatibility adapter (Mesa's GL, which chromium pulls in) is not one the library uses.
if adapter=$(node scripts/check-adapter.mjs 2>/dev/null); then
  echo "$adapter"
else
  if ! may_install; then
    echo "[setup] no core WebGPU adapter, and no permission to install one. Run: bash scripts/setup.sh $PURPOSE --install-system (as root) or CG_USE_SUDO=1 bash scripts/setup.sh $PURPOSE" >&2
    node scripts/check-adapter.mjs || true
    exit 1
  fi
  step "no core WebGPU adapter: installing Mesa 25 (lavapipe, a CPU Vulkan driver) from bookworm-backports"
  # A new machine of this kind keeps its sources only in sources.list.d/*.sources (deb822); older ones
  # use sources.list. Read whichever exist: a missing file must not end the script under pipefail.
  source_files=()
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
    [[ -f $f ]] && source_files+=("$f")
  done
  mirror=""
  if ((${#source_files[@]})); then
    mirror=$( (grep -hoE '^(URIs:|deb)[[:space:]]+(\[[^]]*\][[:space:]]+)?[^[:space:]]*debian[^[:space:]]*' "${source_files[@]}" || true) |
      grep -v security | head -1 | awk '{print $NF}')
  fi
  if [[ -z "$mirror" ]]; then
    echo "[setup] could not find the Debian mirror in /etc/apt/sources.list or /etc/apt/sources.list.d/; add bookworm-backports for it by hand (see README)." >&2
    exit 1
  fi
  if ! grep -qs 'bookworm-backports' "${source_files[@]}"; then
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$mirror" |
      $SUDO tee /etc/apt/sources.list.d/cg-backports.sources >/dev/null
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports \
    mesa-vulkan-drivers libvulkan1 >/dev/null
  node scripts/check-adapter.mjs || {
    echo "[setup] Mesa 25 is installed but Dawn still finds no core adapter; see the lines above." >&2
    exit 1
  }
fi

# 6. Browsers for `pnpm test:browser` only: Debian's own chromium and firefox-esr, never a downloaded build.
# They pull in Mesa's GL; the adapter check above no longer mistakes that for a usable adapter.
[[ $PURPOSE == test ]] || exit 0
browsers=()
[[ -x /usr/bin/chromium ]] || browsers+=(chromium)
[[ -x /usr/bin/firefox-esr ]] || browsers+=(firefox-esr)
if ((${#browsers[@]})); then
  if may_install; then
    step "installing ${browsers[*]} (Debian packages) for the browser tests"
    # Where Mesa 25 came from bookworm-backports (step 5), take the Mesa GL libraries the browsers pull in
    # from there too: bookworm's 22.3 beside backports' 25 leaves a mixed, broken GL stack.
    target=()
    grep -qs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/* && target=(-t bookworm-backports)
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${target[@]}" "${browsers[@]}" >/dev/null
  else
    echo "[setup] the browser tests need ${browsers[*]}: run bash scripts/setup.sh test --install-system (as root) or CG_USE_SUDO=1 bash scripts/setup.sh test" >&2
  fi
fi
