#!/bin/sh
# Installs rerank-mcp from this checkout (the package is not on the npm registry), then proves it
# serves: one `rerank` call over stdio through the MCP SDK's client. Needs Node 20+ and the npm
# registry. PREFIX=DIR installs elsewhere (default: npm's global prefix, else ~/.local when that is
# not writable); RERANK_MODEL=DIR checks with a local model directory instead of the Hub's default.
set -eu
cd "$(dirname "$0")"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' \
  || { echo "install.sh: rerank-mcp needs Node 20 or newer; this is $(node --version)" >&2; exit 1; }
# onnxruntime-node would otherwise download its CUDA provider from outside the npm registry; the server uses the CPU.
export ONNXRUNTIME_NODE_INSTALL=skip
npm ci --no-audit --no-fund --loglevel=error
tarball=$(npm pack --silent | tail -n 1)   # prepack builds dist/
PREFIX=${PREFIX:-$(npm prefix -g)}
if ! mkdir -p "$PREFIX/lib" 2>/dev/null || [ ! -w "$PREFIX/lib" ]; then PREFIX="$HOME/.local"; fi
npm install -g --prefix "$PREFIX" --no-audit --no-fund --loglevel=error "./$tarball"
echo "installed: $PREFIX/bin/rerank-mcp ($("$PREFIX/bin/rerank-mcp" --version))" >&2
node scripts/first-rerank.mjs "$PREFIX/bin/rerank-mcp"
