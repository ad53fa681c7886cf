#!/usr/bin/env bash
# Everything the test suite needs on a fresh Debian 12 machine, as root or as a user with sudo:
#
#   1. the real DICOM peers and the browser, from Debian's packages (apt, ~500 MB, 1-3 min):
#      dcmtk (storescu, echoscu, dcm2pnm, dsrdump), dicom3tools (dciodvfy), orthanc and
#      orthanc-dicomweb (the PACS), chromium and chromium-driver (dashboard and viewer browser
#      tests), pixelmed-apps (DicomSRValidator, with Java);
#   2. PostgreSQL started if it is installed but stopped (its tests skip when it is absent);
#   3. the Python environment .venv with '.[test]': the node, torch 2.14.1 + timm for the
#      model tests (~5.7 GB, 2-4 min from a local wheel cache, longer from PyPI), pytest, ruff,
#      mypy, hadolint.
#
# Then: .venv/bin/python -m pytest   (about 12 min on 2 CPU cores; no GPU needed).
# Idempotent: what is there already is kept. .ci/run calls this script.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null; then
  as_root=(sudo --preserve-env=DEBIAN_FRONTEND)
else
  as_root=(false)  # only a problem when something must be installed or started
fi

need=()
command -v storescu >/dev/null || need+=(dcmtk)
command -v dciodvfy >/dev/null || need+=(dicom3tools)
[ -x /usr/sbin/Orthanc ] || need+=(orthanc)
[ -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || need+=(orthanc-dicomweb)
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
[ -f /usr/share/java/pixelmed.jar ] || need+=(pixelmed-apps)
if [ ${#need[@]} -gt 0 ]; then
  if [ "${as_root[0]:-}" = false ]; then
    echo "setup-tests: ${need[*]} must be installed: run as root, or as a user with sudo" >&2
    exit 1
  fi
  echo "setup-tests: installing ${need[*]}"
  "${as_root[@]}" apt-get update -q
  "${as_root[@]}" apt-get install -y -q --no-install-recommends "${need[@]}"
fi

if command -v pg_isready >/dev/null && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  cluster=$(ls /etc/postgresql 2>/dev/null | head -1)
  if [ -n "$cluster" ] && [ "${as_root[0]:-}" != false ]; then
    "${as_root[@]}" pg_ctlcluster --skip-systemctl-redirect "$cluster" main start || true
  fi
fi

# OHIF v3, the viewer radiologists open results in, as its npm package ships it (built dist/,
# ~200 MB unpacked): the viewer test serves it at the node's /viewer (dicomweb.viewer_dir).
OHIF_VERSION=3.13.2
if [ ! -f .cache/ohif/package/dist/index.html ]; then
  if command -v npm >/dev/null; then
    mkdir -p .cache/ohif
    (cd .cache/ohif && npm pack -q "@ohif/app@$OHIF_VERSION" >/dev/null \
      && tar xzf "ohif-app-$OHIF_VERSION.tgz" && rm "ohif-app-$OHIF_VERSION.tgz") \
      || echo "setup-tests: npm could not fetch @ohif/app; the viewer test will skip" >&2
  else
    echo "setup-tests: npm not found; the OHIF viewer test will skip" >&2
  fi
fi

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]'
echo "setup-tests: ready; run .venv/bin/python -m pytest"
