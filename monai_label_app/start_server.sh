#!/usr/bin/env bash
# Serve MOIS-SAM2 and SAM2 to 3D Slicer (MONAI Label), bound to 127.0.0.1 unless HOST is set.
#   monai_label_app/start_server.sh [STUDIES_DIR] [--conf key value ...]
# STUDIES_DIR defaults to data/demo/raw/imagesTs_1 (run `make demo` first). Options: see monai_label_app/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
STUDIES="${1:-data/demo/raw/imagesTs_1}"
shift $(( $# > 0 ? 1 : 0 ))
if [[ ! -d "$STUDIES" ]]; then
  echo "error: studies folder $STUDIES not found" >&2
  exit 1
fi
exec .venv/bin/python -m monailabel.main start_server --app monai_label_app --studies "$STUDIES" \
  --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" --conf models "${MODELS:-all}" "$@"
