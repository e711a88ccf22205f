#!/usr/bin/env bash
# Idempotent set-up of everything keystation needs on a Debian machine (run as root).
#
#   - system packages: SoftHSM2 (tokens), OpenSC (pkcs11-tool, the independent token checker),
#     libxml2-utils (xmllint, the ISO 20022 schema checker), Chromium, ChromeDriver and a
#     CJK font (the console's browser tests and their screenshots), OpenSSL (and its libp11 PKCS#11
#     engine, for the benchmark's operator script), PostgreSQL (second store
#     backend), the sqlite3 shell (a test reads the database as an outsider would), libusb +
#     pkg-config (USB key detection through rusb), a C toolchain (ring and the bundled SQLite
#     compile C code) and curl;
#   - a Rust toolchain (rustup, stable, with rustfmt and clippy) when cargo is missing or older
#     than the package's rust-version; scripts/test.sh and scripts/demo.sh pick it up from
#     ~/.cargo/bin;
#   - a running local PostgreSQL cluster with a superuser role for the current OS user, reached
#     over the Unix socket with peer authentication, so no password exists anywhere.
#
# Safe to run again: packages already present are skipped, an adequate toolchain is kept, and a
# running cluster the current user can already use is left alone (then no root is needed).
set -euo pipefail

min_rust="1.87"   # Cargo.toml rust-version (edition 2024; the test token's sm2/p256 0.14 need 1.87)

as_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: $1 needs root: run scripts/setup.sh as root (or sudo)" >&2
    exit 1
  fi
}

need_pkgs=(softhsm2 opensc libxml2-utils openssl postgresql libusb-1.0-0-dev pkg-config
           ca-certificates build-essential curl
           libengine-pkcs11-openssl    # the libp11 engine: benches/operator.sh, the benchmark's baseline
           sqlite3                     # the SQLite shell: a console test reads the operators table with it
           python3-venv                # the venv of the Python checkers (gmssl, below)
           chromium chromium-driver    # the console's browser tests (tests/it/console, over WebDriver)
           fonts-wqy-zenhei)           # a CJK font, so the console's screenshots show its Chinese
missing=()
for p in "${need_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  as_root "installing ${missing[*]}"
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Rust: rustup's stable toolchain unless an adequate cargo is already on PATH (or in ~/.cargo).
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
rust_ok() {
  command -v cargo >/dev/null 2>&1 || return 1
  local v
  v=$(cargo --version | awk '{print $2}')
  [ "$(printf '%s\n%s\n' "$min_rust" "$v" | sort -V | head -n1)" = "$min_rust" ]
}
if ! rust_ok; then
  if command -v rustup >/dev/null 2>&1; then
    echo "setup: updating the Rust toolchain (need >= $min_rust)"
    rustup toolchain install stable --profile minimal --component rustfmt,clippy
    rustup default stable
  else
    echo "setup: installing Rust (rustup, stable, minimal profile + rustfmt, clippy)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
      sh -s -- -y --no-modify-path --profile minimal --component rustfmt,clippy
  fi
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
  rust_ok || { echo "setup: cargo >= $min_rust still not available" >&2; exit 1; }
fi

# PostgreSQL: start the distribution's default cluster if it is not running, and give the
# current OS user a role (peer authentication over /var/run/postgresql).
pg_usable() {
  psql "postgres:///postgres?host=/var/run/postgresql" -qAtc \
    "select 1 from pg_roles where rolname = current_user and (rolsuper or rolcreatedb)" \
    2>/dev/null | grep -q 1
}
if [ "${KEYSTATION_SKIP_POSTGRES:-0}" != "1" ] && ! pg_usable; then
  as_root "starting PostgreSQL and creating a role for $(id -un)"
  ver=$(ls /usr/lib/postgresql | sort -V | tail -n1)
  if ! pg_lsclusters -h 2>/dev/null | grep -q .; then
    pg_createcluster "$ver" main >/dev/null
  fi
  cluster=$(pg_lsclusters -h | head -n1)
  cver=$(echo "$cluster" | awk '{print $1}')
  cname=$(echo "$cluster" | awk '{print $2}')
  if ! echo "$cluster" | grep -q online; then
    pg_ctlcluster "$cver" "$cname" start
  fi
  me=$(id -un)
  for _ in $(seq 1 30); do
    su postgres -c "psql -qAtc 'select 1'" >/dev/null 2>&1 && break
    sleep 1
  done
  if ! su postgres -c "psql -qAtc \"select 1 from pg_roles where rolname='$me'\"" | grep -q 1; then
    su postgres -c "psql -qc 'create role \"$me\" superuser login'" >/dev/null
  fi
  if ! su postgres -c "psql -qAtc \"select 1 from pg_database where datname='$me'\"" | grep -q 1; then
    su postgres -c "psql -qc 'create database \"$me\" owner \"$me\"'" >/dev/null
  fi
  pg_usable || { echo "setup: PostgreSQL still not usable by $me" >&2; exit 1; }
fi
# The Python checkers, each in its own venv under /opt/keystation so the system Python stays
# untouched: python_checker NAME VERSION [MODULE] (pip package NAME, imported as MODULE, by
# default NAME).
python_checker() {
  local venv="/opt/keystation/$1"
  if ! "$venv/bin/python" -c "import ${3:-$1}" >/dev/null 2>&1; then
    as_root "installing $1 $2 into $venv"
    echo "setup: installing $1 $2 into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "$1==$2"
  fi
}
# gmssl: a second SM2/SM3 implementation (pure Python, another code base than RustCrypto and
# OpenSSL) that the SM2 tests verify the station's signatures with; tests/it/sm2.rs runs
# /opt/keystation/gmssl/bin/python.
python_checker gmssl 3.2.2
# pkilint: DigiCert's independent linter of certificates, CRLs and OCSP responses (RFC 5280,
# RFC 6960); tests/it/revocation runs /opt/keystation/pkilint/bin/lint_crl, tests/it/ocsp
# lint_pkix_cert and lint_ocsp_response.
python_checker pkilint 0.13.3
# openapi-spec-validator: an independent check of the order API's OpenAPI document (OpenAPI
# 3.1 and its JSON Schema); tests/it/console/api.rs runs
# /opt/keystation/openapi-spec-validator/bin/openapi-spec-validator on the served document.
python_checker openapi-spec-validator 0.9.0 openapi_spec_validator
echo "setup: ok"
