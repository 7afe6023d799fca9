#!/usr/bin/env bash
# Serve MOIS-SAM2 and SAM2 to 3D Slicer (MONAI Label) through the app's hardened HTTP front.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: monai_label_app/start_server.sh [STUDIES_DIR] [--conf key value ...]

Serve MOIS-SAM2 / SAM2 to 3D Slicer with MONAI Label. STUDIES_DIR is a folder of NIfTI scans (the datastore;
default data/demo/raw/imagesTs_1, run `make demo` first). Options: monai_label_app/README.md.

Environment:
  HOST    address to bind (default 127.0.0.1, this machine only)
  PORT    port (default 8000)
  MODELS  mois_sam2, sam2 or all (default all)

Security (docs/security.md): the server runs models on uploaded scans and writes uploaded scans and labels into
STUDIES_DIR. Anyone who can reach the port can do that. A HOST other than a loopback address (127.x.x.x, localhost,
::1) is refused unless MONAI Label's authentication is on (MONAI_LABEL_AUTH_ENABLE=true with a Keycloak realm in
MONAI_LABEL_AUTH_REALM_URI; every request then needs a token with the MONAI Label roles). To accept the risk on a
network you trust completely, set ALLOW_UNAUTHENTICATED_REMOTE=1: then everyone on that network can upload scans,
read every study and label, and save labels. Safer for a team: keep HOST=127.0.0.1 and let each annotator reach the
port through an SSH tunnel (ssh -N -L 8000:127.0.0.1:8000 server).
EOF
}

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  usage
  exit 0
fi
cd "$(dirname "$0")/.."
STUDIES="${1:-data/demo/raw/imagesTs_1}"
shift $(( $# > 0 ? 1 : 0 ))
if [[ ! -d "$STUDIES" ]]; then
  echo "error: studies folder $STUDIES not found" >&2
  exit 1
fi
HOST="${HOST:-127.0.0.1}"
if [[ ! "$HOST" =~ ^(127\.[0-9]+\.[0-9]+\.[0-9]+|localhost|::1)$ ]]; then
  AUTH="$(printf '%s' "${MONAI_LABEL_AUTH_ENABLE:-false}" | tr '[:upper:]' '[:lower:]')"
  if [[ "$AUTH" != "true" && "$AUTH" != "1" && "${ALLOW_UNAUTHENTICATED_REMOTE:-0}" != "1" ]]; then
    echo "error: HOST=$HOST is not a loopback address and MONAI Label authentication is off; anyone reaching" \
         "the port could upload scans and write labels (see start_server.sh --help and docs/security.md)" >&2
    exit 1
  fi
fi
exec .venv/bin/python -m monailabel.main start_server --app monai_label_app --studies "$STUDIES" \
  --host "$HOST" --port "${PORT:-8000}" --uvicorn_app mois_sam2_nf.serving.http:app \
  --conf models "${MODELS:-all}" "$@"
