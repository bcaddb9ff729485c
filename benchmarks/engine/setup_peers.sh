#!/usr/bin/env bash
# Installs the attribution peers (TRAK, Kronfluence) for the engine benchmarks ONLY, into .bench/peers
# (gitignored). They are never runtime dependencies: the benchmark scripts put this folder on sys.path.
# --no-deps because kronfluence pins torchvision (which fails to import beside torch==2.13.0) and would
# otherwise pull a different torch; their real needs are listed by hand (see shared/design/PEERS.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
TARGET=.bench/peers
if [ -f "$TARGET/.installed" ]; then echo "peers already installed in $TARGET"; exit 0; fi
mkdir -p "$TARGET"
.venv/bin/python -m pip install --disable-pip-version-check -q --no-deps --target "$TARGET" \
  traker==0.3.2 kronfluence==1.0.1 \
  einops==0.8.1 einconv==0.1.0 opt-einsum==3.4.0 accelerate==1.10.1 psutil==7.2.2
# tqdm, safetensors, pyyaml, scipy are already pinned runtime dependencies of the project venv.
touch "$TARGET/.installed"
echo "peers installed in $TARGET"
