#!/usr/bin/env bash
# The instructor guide's offline setup, checked end to end (docs/instructor/README.md):
#   1. online: download every wheel the course needs, and the build tools of an editable install;
#   2. with the network cut off (a new network namespace with only loopback: needs root and
#      util-linux's unshare): install into a fresh venv from that folder alone, then run one
#      notebook through the harness with the data from a bundle folder.
# Usage (from the repository root, as root): docs/instructor/offline_check.sh BUNDLE_DIR [WORKDIR]
# BUNDLE_DIR: a folder with the .npz files (`medlab download --all --to DIR` builds the official one).
set -euo pipefail
bundle="$(cd "$1" && pwd)"
work="${2:-/tmp/medlab-offline}"
mkdir -p "$work"
pip download -q -c constraints.txt -d "$work/wheels" ".[all]" setuptools wheel
rm -rf "$work/venv" "$work/run"
unshare -n bash -c "
  ip link set lo up   # Jupyter kernels talk to the notebook runner over loopback
  python3 -m venv '$work/venv'
  '$work/venv/bin/pip' install -q --no-index --find-links '$work/wheels' -c constraints.txt -e '.[all]'
  MEDLAB_DATA_DIR='$bundle' '$work/venv/bin/medlab' reproduce --quick -p dataset=breastmnist \
    --output '$work/run' --no-html 00_tour
"
echo "offline install and run: OK ($work)"
