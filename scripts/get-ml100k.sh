#!/usr/bin/env bash
# Fetch MovieLens-100K in RecBole's atomic format (ml-100k.inter, ml-100k.item) from the recbole
# wheel on PyPI (the MovieLens licence forbids redistributing it in this repository).
# Target: ${COMIREC_ML100K:-$HOME/.cache/comirec/ml-100k}. Idempotent: does nothing when both
# files are present with the expected sha256 (see shared/data/movielens-100k/README.md).
set -euo pipefail

DEST="${COMIREC_ML100K:-$HOME/.cache/comirec/ml-100k}"
PY="${PYTHON:-python3}"
declare -A SHA256=(
  [ml-100k.inter]=4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff
  [ml-100k.item]=51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532
)

valid() {  # valid FILE: present with the expected checksum
  [[ -f "$DEST/$1" ]] && [[ "$(sha256sum "$DEST/$1" | cut -d' ' -f1)" == "${SHA256[$1]}" ]]
}

if valid ml-100k.inter && valid ml-100k.item; then
  echo "ml-100k already present and verified in $DEST"
  exit 0
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
echo "downloading recbole==1.2.1 (no dependencies) to extract ml-100k ..."
"$PY" -m pip download --quiet --no-deps --only-binary=:all: recbole==1.2.1 -d "$TMP"
WHEEL="$(ls "$TMP"/recbole-1.2.1-*.whl)"
mkdir -p "$DEST"
for f in ml-100k.inter ml-100k.item; do
  "$PY" - "$WHEEL" "recbole/dataset_example/ml-100k/$f" "$TMP/$f" <<'PYEOF'
import sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, open(out, "wb") as f:
    f.write(z.read(member))
PYEOF
  got="$(sha256sum "$TMP/$f" | cut -d' ' -f1)"
  if [[ "$got" != "${SHA256[$f]}" ]]; then
    echo "error: $f from the recbole wheel has sha256 $got, expected ${SHA256[$f]}" >&2
    exit 1
  fi
  mv "$TMP/$f" "$DEST/$f"
done
echo "ml-100k ready in $DEST"
