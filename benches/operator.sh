#!/usr/bin/env bash
# Benchmark baseline: what a CA operator would script instead of keystation to provision ONE
# PKCS#11 token, with pkcs11-tool (OpenSC 0.23) and openssl 3 + the libp11 engine ("pkcs11").
# The benchmark harness runs it once per token and times each run.
#
#   benches/operator.sh --check-tools [--module PATH]
#   benches/operator.sh --module PATH --ca-token LABEL --ca-key LABEL --ca-cert PEMFILE \
#       --ca-pin-file FILE --alg ec|rsa --data FILE --work DIR --label TOKENLABEL
#
# Steps: initialise the free (uninitialised) slot's token as TOKENLABEL with random SO and user
# PINs; generate the key pair on the token (EC P-256 or RSA-2048, sensitive, never extractable);
# CSR signed on the token; certificate signed by the CA key on the CA token and verified against
# PEMFILE; certificate and the --data file written to the token, the file as private data
# object(s) ("seal-data"; a file over 5000 bytes as "seal-data.1".."seal-data.N", 5000 bytes
# each, because pkcs11-tool 0.23 silently truncates objects to 5000 bytes); objects listed and
# checked. Temporary files go to a fresh directory under DIR, removed on success.
# Exit 0, stdout "ok <certificate serial, hex>"; 1 when a step fails, stderr one line
# "operator.sh: <step>: <reason>" (the directory under DIR is kept); 2 on bad arguments;
# 3 when a tool is missing, stderr "operator.sh: missing: <what>".
#
# PINs: pkcs11-tool takes PINs as command-line arguments (--pin, --so-pin), which any local user
# can read in ps. This script passes "env:VAR" instead (OpenSC 0.23 then reads the environment)
# and gives openssl a file (libp11 URI pin-source); the PINs still sit in the environment and in
# files under DIR while it runs. One reason a CA should not provision tokens this way in
# production. libp11 keeps a trailing newline of a pin-source file as part of the PIN, so the CA
# PIN file is copied without it.
set -euo pipefail
set -E
umask 077

prog=operator.sh
default_module=/usr/lib/softhsm/libsofthsm2.so
tmp=''

fail() { # STEP REASON
  printf '%s: %s: %s\n' "$prog" "$1" "$2" >&2
  exit 1
}
missing() { # WHAT
  printf '%s: missing: %s\n' "$prog" "$1" >&2
  exit 3
}
usage() { # REASON
  printf '%s: args: %s\n' "$prog" "$1" >&2
  exit 2
}
trap 'printf "%s: internal: line %s: command failed\n" "$prog" "$LINENO" >&2; exit 1' ERR

# The first useful line of a failed tool's output: openssl's error queue ("lib: reason"), else a
# PKCS#11 return code or an "error:" line (pkcs11-tool), else the last non-empty line.
reason() { # LOG RC
  local line
  line=$(awk -F: '/^[0-9A-F]+:error:/ { print $4 ": " $6; exit }' "$1")
  [ -n "$line" ] || line=$(grep -m1 'CKR_' "$1" || true)
  [ -n "$line" ] || line=$(grep -m1 '^error: ' "$1" || true)
  [ -n "$line" ] || line=$(grep -Ev '^[[:space:]]*$|^Aborting\.$' "$1" | tail -n1 || true)
  line=${line#error: }
  [ -n "$line" ] || line="no output"
  if [ "$2" -gt 128 ]; then
    line="$line (killed by signal $(($2 - 128)))"
  else
    line="$line (exit $2)"
  fi
  printf '%s' "${line:0:300}" | tr -d '\r\n'
}

# run STEP CMD...: the command's output goes to $tmp/log (the shell's own "Segmentation fault"
# notice too: libp11 0.4.12 crashes at exit after a failed login); fails the step on non-zero exit.
run() {
  local step=$1 rc=0
  shift
  { "$@"; } >"$tmp/log" 2>&1 </dev/null || rc=$?
  if [ "$rc" -ne 0 ]; then
    if grep -qE 'no such engine|dso not found' "$tmp/log"; then
      missing "openssl engine pkcs11 (libp11)"
    fi
    fail "$step" "$(reason "$tmp/log" "$rc")"
  fi
}

abs() { case $1 in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "$1" ;; esac }

# RFC 7512 percent-encoding of a PKCS#11 URI attribute value.
pct() {
  local LC_ALL=C s=$1 out='' c i
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case $c in
      [A-Za-z0-9._~-]) out+=$c ;;
      *) printf -v c '%%%02X' "'$c" && out+=$c ;;
    esac
  done
  printf '%s' "$out"
}

# An openssl -subj value: / + = and \ escaped.
dn_escape() {
  local s=${1//\\/\\\\}
  s=${s//\//\\/}
  s=${s//+/\\+}
  printf '%s' "${s//=/\\=}"
}

check_tools() { # MODULE
  local t
  for t in pkcs11-tool openssl awk grep split mktemp; do
    command -v "$t" >/dev/null 2>&1 || missing "$t"
  done
  [ -r "$1" ] || missing "PKCS#11 module $1"
}

# ---- arguments -------------------------------------------------------------------------------
check_only=0 module='' ca_token='' ca_key='' ca_cert='' ca_pin_file=''
alg='' data='' work='' label=''
while [ $# -gt 0 ]; do
  case $1 in
    --check-tools) check_only=1; shift; continue ;;
    --module | --ca-token | --ca-key | --ca-cert | --ca-pin-file) ;;
    --alg | --data | --work | --label) ;;
    *) usage "unknown argument: $1" ;;
  esac
  [ $# -ge 2 ] || usage "$1 needs a value"
  case $1 in
    --module) module=$2 ;;
    --ca-token) ca_token=$2 ;;
    --ca-key) ca_key=$2 ;;
    --ca-cert) ca_cert=$2 ;;
    --ca-pin-file) ca_pin_file=$2 ;;
    --alg) alg=$2 ;;
    --data) data=$2 ;;
    --work) work=$2 ;;
    --label) label=$2 ;;
  esac
  shift 2
done

if [ "$check_only" -eq 1 ]; then
  check_tools "${module:-$default_module}"
  engine=$(openssl engine -t pkcs11 </dev/null 2>/dev/null || true)
  case $engine in
    *"[ available ]"*) ;;
    *) missing "openssl engine pkcs11 (libp11, package libengine-pkcs11-openssl)" ;;
  esac
  exit 0
fi

for opt in module ca_token ca_key ca_cert ca_pin_file alg data work label; do
  [ -n "${!opt}" ] || usage "--${opt//_/-} is required"
done
case $alg in
  ec) key_type=EC:prime256v1 ;;
  rsa) key_type=rsa:2048 ;;
  *) usage "--alg must be ec or rsa" ;;
esac
bytes() { local LC_ALL=C; printf '%s' "${#1}"; }
[ "$(bytes "$label")" -le 32 ] || usage "--label is longer than 32 bytes (a PKCS#11 token label)"
check_tools "$module"
for f in "$ca_cert" "$ca_pin_file" "$data"; do
  [ -r "$f" ] || usage "cannot read $f"
done
[ -s "$data" ] || usage "$data is empty"
module=$(abs "$module") ca_cert=$(abs "$ca_cert")
ca_pin_file=$(abs "$ca_pin_file") data=$(abs "$data")

# Everything below runs in a fresh directory under --work (relative names keep the pin-source
# file path out of URI escaping).
mkdir -p "$work" || fail work "cannot create $work"
tmp=$(mktemp -d "$(abs "$work")/operator.XXXXXX") || fail work "cannot create a directory in $work"
cd "$tmp"
export PKCS11_MODULE_PATH=$module # the libp11 engine's module
p11() { pkcs11-tool --module "$module" "$@"; }

ca_pin=$(<"$ca_pin_file")
ca_pin=${ca_pin%$'\r'}
[ -n "$ca_pin" ] || fail ca-pin "$ca_pin_file is empty"
printf '%s' "$ca_pin" >ca.pin
unset ca_pin

# ---- 1. the free slot ------------------------------------------------------------------------
run slot p11 -L
cp log slots.txt
# "Slot N (0xID): ..." then "  token state:   uninitialized" or "  token label        : LABEL".
free_slot=$(awk '/^Slot [0-9]+ \(0x[0-9a-fA-F]+\)/ { id = $3; gsub(/[():]/, "", id) }
                 /^ *token state: *uninitiali[sz]ed/ { free = id }
                 END { print free }' slots.txt)
[ -n "$free_slot" ] || fail slot "no uninitialised token in $module"
# (Labels go to awk through the environment: -v would interpret backslashes.)
if OPERATOR_LABEL=$label awk '/^ *token label *: / {
       sub(/^ *token label *: /, ""); if ($0 == ENVIRON["OPERATOR_LABEL"]) f = 1 }
     END { exit !f }' slots.txt; then
  fail slot "a token labelled \"$label\" already exists"
fi
free_slot=$((free_slot)) # decimal for --slot

# ---- 2. PINs, init-token, init-pin -----------------------------------------------------------
# One openssl call for every random value: SO PIN, user PIN (16 hex), key CKA_ID (8 hex),
# certificate serial (16 hex, top nibble forced to 1..7: positive, no leading zero).
run random openssl rand -hex -out rand.hex 28
rnd=$(<rand.hex)
[ "${#rnd}" -eq 56 ] || fail random "unexpected output from openssl rand"
export OPERATOR_SO_PIN=${rnd:0:16} OPERATOR_USER_PIN=${rnd:16:16}
key_id=${rnd:32:8}
serial=$(printf '%X' $(((16#${rnd:40:1} % 7) + 1)))${rnd:41:15}
serial=${serial^^}
printf '%s' "$OPERATOR_USER_PIN" >user.pin
# SoftHSM moves an initialised token to a new slot id: from here on it is found by its label.
run init p11 --slot "$free_slot" --init-token --label "$label" --so-pin env:OPERATOR_SO_PIN \
  --init-pin --pin env:OPERATOR_USER_PIN
unset OPERATOR_SO_PIN
user() { p11 --token-label "$label" --login --pin env:OPERATOR_USER_PIN "$@"; }

# ---- 3. key pair on the token ----------------------------------------------------------------
run keygen user --keypairgen --key-type "$key_type" --id "$key_id" --label "$label"
# pkcs11-tool prints the new objects; the private key's "Access:" line (CKA_SENSITIVE,
# CKA_ALWAYS_SENSITIVE, CKA_EXTRACTABLE, CKA_NEVER_EXTRACTABLE, CKA_LOCAL) must read "sensitive,
# always sensitive, never extractable, local", and not "extractable". (`--read-object --type
# privkey` is no check: pkcs11-tool 0.23 prints "reading private keys not (yet) supported" and
# exits 0.)
check_privkey() { # STEP LISTING
  local access
  access=$(awk '/^Private Key Object/ { p = 1; next } /^[^ ]/ { p = 0 }
                p && /^ *Access:/ { sub(/^ *Access: */, ""); print; exit }' "$2")
  [ -n "$access" ] || fail "$1" "no private key (or no Access line) in pkcs11-tool's listing"
  case ", $access," in
    *", extractable,"*) fail "$1" "private key is extractable: $access" ;;
  esac
  case ", $access," in
    *", sensitive,"*", never extractable,"*) ;;
    *) fail "$1" "private key is not sensitive and never extractable: $access" ;;
  esac
}
check_privkey keygen log

# ---- 4. CSR signed on the token --------------------------------------------------------------
tok=$(pct "$label")
dn=$(dn_escape "$label")
run csr openssl req -new -engine pkcs11 -keyform engine \
  -key "pkcs11:token=$tok;object=$tok;type=private;pin-source=file:user.pin" \
  -subj "/C=CN/O=$dn/CN=$dn" -utf8 -sha256 -out req.pem
run csr-verify openssl req -verify -noout -in req.pem

# ---- 5. certificate signed by the CA key on the CA token -------------------------------------
cat >ext.cnf <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
ca_uri="pkcs11:token=$(pct "$ca_token");object=$(pct "$ca_key");type=private;pin-source=file:ca.pin"
run ca-sign openssl x509 -req -in req.pem -engine pkcs11 -CAkeyform engine -CAkey "$ca_uri" \
  -CA "$ca_cert" -set_serial "0x$serial" -days 365 -sha256 -extfile ext.cnf \
  -outform DER -out cert.der
run cert-verify openssl verify -CAfile "$ca_cert" cert.der

# ---- 6. certificate onto the token -----------------------------------------------------------
run write-cert user --write-object cert.der --type cert --id "$key_id" --label "$label"

# ---- 7. the data object(s) ------------------------------------------------------------------
# pkcs11-tool 0.23 --write-object reads at most 5000 bytes of its file (MAX_OBJECT_SIZE) and
# silently stores the truncated value. A file up to 5000 bytes becomes one object "seal-data";
# a larger one is split into 5000-byte objects "seal-data.1" ... "seal-data.N".
size=$(wc -c <"$data")
size=$((size))
chunk=5000
if [ "$size" -le "$chunk" ]; then
  run write-data user --write-object "$data" --type data --label seal-data --private
  data_labels=(seal-data)
else
  run split split -b "$chunk" -a 4 -d "$data" data.
  data_labels=()
  n=0
  for part in data.[0-9][0-9][0-9][0-9]; do
    n=$((n + 1))
    run write-data user --write-object "$part" --type data --label "seal-data.$n" --private
    data_labels+=("seal-data.$n")
  done
  [ "$n" -eq $(((size + chunk - 1) / chunk)) ] || fail write-data "split $data into $n parts"
fi

# ---- 8. check --------------------------------------------------------------------------------
run check user --list-objects
cp log objects.txt
OPERATOR_LABEL=$label awk -v id="$key_id" '
  /^[^ ]/ { kind = $0 }
  kind ~ /^Certificate Object/ && /^ *label: / {
    sub(/^ *label: */, ""); cl = ($0 == ENVIRON["OPERATOR_LABEL"]) }
  kind ~ /^Certificate Object/ && /^ *ID: / && cl && $2 == id { cert = 1 }
  kind ~ /^Private Key Object/ && /^ *ID: / && $2 == id { key = 1 }
  END { exit !(cert && key) }' objects.txt ||
  fail check "certificate or private key with id $key_id not found on token $label"
for l in "${data_labels[@]}"; do
  grep -qxE " *label: *'${l//./\\.}'" objects.txt ||
    fail check "data object $l not found on token $label"
done
check_privkey check objects.txt

cd /
rm -rf "$tmp"
printf 'ok %s\n' "$serial"
