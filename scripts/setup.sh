#!/usr/bin/env bash
# Idempotent set-up of everything keystation needs on a Debian machine (run as root).
#
#   - system packages: SoftHSM2 (tokens), OpenSC (pkcs11-tool, the independent token checker),
#     libxml2-utils (xmllint, the ISO 20022 schema checker), OpenSSL, PostgreSQL (second store
#     backend), libusb + pkg-config (USB key detection through rusb);
#   - a running local PostgreSQL cluster with a superuser role for the current OS user, reached
#     over the Unix socket with peer authentication, so no password exists anywhere.
#
# Safe to run again: packages already present are skipped and a running cluster is left alone.
set -euo pipefail

need_pkgs=(softhsm2 opensc libxml2-utils openssl postgresql libusb-1.0-0-dev pkg-config ca-certificates)
missing=()
for p in "${need_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install a Rust toolchain >= 1.85 (edition 2024) with rustup first" >&2
  exit 1
fi

# PostgreSQL: start the distribution's default cluster if it is not running.
if [ "${KEYSTATION_SKIP_POSTGRES:-0}" != "1" ]; then
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
fi
echo "setup: ok"
