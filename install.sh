#!/usr/bin/env bash
# Install memsep (editable) and its dependencies: `bash install.sh` for the workbench, `bash install.sh test`
# to add the test tools. An installed torch is kept as it is (a GPU machine has its own build); where there
# is none, the CPU build torch==2.13.0 is installed first, since a bare `pip install torch` resolves to a
# multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python}
if ! "$PYTHON" -c "import torch" >/dev/null 2>&1; then
    "$PYTHON" -m pip install --quiet "torch==2.13.0"
fi
extras=""
if [ "${1:-}" = "test" ]; then extras="[test]"; fi
"$PYTHON" -m pip install --quiet -e ".${extras}"
