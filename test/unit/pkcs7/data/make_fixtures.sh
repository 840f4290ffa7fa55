#!/bin/bash
# Test fixtures for pkcs7/: captures real SCEP messages between micromdm scepclient and scepserver (Debian `scep`).
#
# Usage: make_fixtures.sh [OUT_DIR]   (default: the directory of this script)
# Needs: scepserver, scepclient, python3, openssl, and for the PENDING/CertPoll step go and
# micromdm's library (apt-get install golang-go golang-github-micromdm-scep-dev; only to
# regenerate, never to build or test). Works offline. Binds two free loopback ports.
# Every run makes new keys, nonces and transaction IDs: commit the fixtures and
# fixtures.expect together.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="$(cd "${1:-$here}" && pwd)"
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_for_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "port $1 never opened" >&2
    return 1
}
# first_capture DIR OPERATION SUFFIX: the first captured file of that operation.
first_capture() {
    ls "$1"/*-"$2"-"$3" | head -n 1
}

challenge="fixture-challenge"
server_port="$(free_port)"
relay_port="$(free_port)"

# A CA with a 2048-bit key (the 4096-bit default only makes this slower).
scepserver ca -init -depot "$work/depot" -keySize 2048 >/dev/null 2>&1
# -allowrenew 0: renew whenever asked (the default refuses within 14 days of issuance).
scepserver -depot "$work/depot" -port "$server_port" -challenge "$challenge" -allowrenew 0 >"$work/server.log" 2>&1 &
pids+=($!)
wait_for_port "$server_port"

# run_relay CAPTURE_DIR [hide-post]: (re)start the capturing relay in front of scepserver.
relay_pid=""
run_relay() {
    [ -n "$relay_pid" ] && kill "$relay_pid" && wait "$relay_pid" 2>/dev/null || true
    mkdir -p "$1"
    python3 "$here/scep_capture_relay.py" "$relay_port" "$server_port" "$1" ${2:-} 2>>"$work/relay.log" &
    relay_pid=$!
    pids+=($relay_pid)
    wait_for_port "$relay_port"
}
# enroll NAME CHALLENGE [RUN]: one scepclient run in directory client-NAME, logged to
# client-NAME[RUN].log. scepclient reuses the key and certificate it finds there: a first run
# sends PKCSReq signed by a throwaway self-signed cert; once cert.pem exists, RenewalReq signed by it.
enroll() {
    mkdir -p "$work/client-$1"
    (cd "$work/client-$1" && scepclient -server-url "http://127.0.0.1:$relay_port/scep" \
        -private-key key.pem -certificate cert.pem -cn "$1" -challenge "$2" -debug) >"$work/client-$1${3:-}.log" 2>&1
}
transaction_id_of() {  # NAME[RUN]
    sed -n 's/.*msg="creating SCEP CSR request" transaction_id="\([^"]*\)".*/\1/p' "$work/client-$1.log" | head -n 1
}

# 1. A successful enrollment over POST: GetCACert, PKCSReq, CertRep SUCCESS.
run_relay "$work/capture-success"
enroll fixture-device-1 "$challenge"
cp "$(first_capture "$work/capture-success" GetCACert response.bin)" "$out/getcacert-single.der"
cp "$(first_capture "$work/capture-success" PKIOperation request.bin)" "$out/pkcsreq.der"
cp "$(first_capture "$work/capture-success" PKIOperation response.bin)" "$out/certrep-success.der"

# 2. A wrong challenge: scepserver answers CertRep FAILURE (scepclient then exits non-zero).
run_relay "$work/capture-failure"
enroll fixture-device-2 wrong-challenge || true
cp "$(first_capture "$work/capture-failure" PKIOperation request.bin)" "$out/pkcsreq-wrong-challenge.der"
cp "$(first_capture "$work/capture-failure" PKIOperation response.bin)" "$out/certrep-failure.der"

# 3. GET: with POSTPKIOperation hidden, scepclient sends the PKCSReq as a GET `message=`
#    (base64url; scepserver 2.1.0 rejects it, which does not matter for the capture).
run_relay "$work/capture-get" hide-post
enroll fixture-device-3 "$challenge" || true
cp "$(first_capture "$work/capture-get" PKIOperation request.bin)" "$out/pkcsreq-get-message.txt"

# 4. Renewal: device 1 runs scepclient again with the certificate it got in 1, so it sends a
#    RenewalReq signed by that certificate; scepserver answers CertRep SUCCESS.
run_relay "$work/capture-renewal"
enroll fixture-device-1 "$challenge" -renewal
cp "$(first_capture "$work/capture-renewal" PKIOperation request.bin)" "$out/renewalreq.der"
cp "$(first_capture "$work/capture-renewal" PKIOperation response.bin)" "$out/certrep-renewal-success.der"

# 5. PENDING: scepserver never answers it, so generate/ (micromdm/scep's own stack, see its
#    README) answers a real PKCSReq with a CertRep PENDING signed by this CA, and writes the
#    CertPoll for the same transaction that scepclient never sends. The PKCSReq is captured as
#    a GET (relay hides POSTPKIOperation; scepserver rejects GET, which does not matter here),
#    so its `message=` value and its DER are the same real message.
run_relay "$work/capture-pending" hide-post
enroll fixture-device-4 "$challenge" || true
cp "$(first_capture "$work/capture-pending" PKIOperation request.bin)" "$out/pkcsreq-for-pending-get-message.txt"
python3 -c 'import base64, sys, urllib.parse
value = urllib.parse.unquote(open(sys.argv[1]).read().strip())
sys.stdout.buffer.write(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))' \
    "$out/pkcsreq-for-pending-get-message.txt" >"$out/pkcsreq-for-pending.der"
# GOPATH mode, offline: Debian installs the library at .../micromdm/scep, its imports say .../v2.
mkdir -p "$work/gopath/src/github.com/micromdm/scep"
ln -s /usr/share/gocode/src/github.com/micromdm/scep "$work/gopath/src/github.com/micromdm/scep/v2"
(cd "$here/generate" && GO111MODULE=off GOPATH="$work/gopath:/usr/share/gocode" GOCACHE="$work/gocache" \
    GOFLAGS= GOPROXY=off go run . -depot "$work/depot" -request "$out/pkcsreq-for-pending.der" \
    -device-key "$work/client-fixture-device-4/key.pem" -pending "$out/certrep-pending.der" \
    -certpoll "$out/certpoll-for-pending.der") >"$work/generated.expect"

# 6. An NDES-style GetCACert answer (RA signing cert, RA encryption cert, CA) as a degenerate
#    certs-only PKCS#7. scepserver 2.1.0 has no RA, so openssl builds it from the same CA
#    (scepserver stores ca.key encrypted with an empty password).
make_ra_cert() {  # NAME KEY_USAGE
    openssl req -new -newkey rsa:2048 -nodes -keyout "$work/$1.key" -subj "/C=US/O=scep-ca/CN=$1" \
        -out "$work/$1.csr" 2>/dev/null
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,%s\n' "$2" >"$work/$1.ext"
    openssl x509 -req -in "$work/$1.csr" -CA "$work/depot/ca.pem" -CAkey "$work/depot/ca.key" -passin pass: \
        -set_serial "0x$(openssl rand -hex 8)" -days 730 -extfile "$work/$1.ext" -out "$work/$1.pem" 2>/dev/null
}
make_ra_cert fixture-ra-sign digitalSignature
make_ra_cert fixture-ra-encrypt keyEncipherment
openssl crl2pkcs7 -nocrl -certfile "$work/fixture-ra-sign.pem" -certfile "$work/fixture-ra-encrypt.pem" \
    -certfile "$work/depot/ca.pem" -outform DER -out "$out/getcacert-ra-chain.p7b"

# 7. What the tests compare against, taken from scepclient's log and from openssl, not from our parser.
x509_field() {  # PEM_FILE FIELD
    case "$2" in
        subject) openssl x509 -in "$1" -noout -subject -nameopt RFC2253 | sed 's/^subject=//' ;;
        issuer) openssl x509 -in "$1" -noout -issuer -nameopt RFC2253 | sed 's/^issuer=//' ;;
        serial) openssl x509 -in "$1" -noout -serial | sed 's/^serial=//' ;;
        not_before) date -u -d "$(openssl x509 -in "$1" -noout -startdate | sed 's/^notBefore=//')" +%s ;;
        not_after) date -u -d "$(openssl x509 -in "$1" -noout -enddate | sed 's/^notAfter=//')" +%s ;;
        sha256_fingerprint) openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/^.*=//' ;;
    esac
}
# The PKCSReq signer is scepclient's throwaway self-signed cert, the only cert in the message.
openssl pkcs7 -inform DER -in "$out/pkcsreq.der" -print_certs -out "$work/client-signer.pem"
# The RenewalReq signer is the certificate issued in 1, again the only cert in the message.
openssl pkcs7 -inform DER -in "$out/renewalreq.der" -print_certs -out "$work/renewal-signer.pem"
{
    echo "transaction_id=$(transaction_id_of fixture-device-1)"
    echo "wrong_challenge_transaction_id=$(transaction_id_of fixture-device-2)"
    echo "get_transaction_id=$(transaction_id_of fixture-device-3)"
    echo "renewal_transaction_id=$(transaction_id_of fixture-device-1-renewal)"
    echo "pending_client_transaction_id=$(transaction_id_of fixture-device-4)"
    for field in subject issuer serial not_before not_after; do
        echo "client_signer_$field=$(x509_field "$work/client-signer.pem" $field)"
    done
    for field in subject issuer serial not_before not_after; do
        echo "renewal_signer_$field=$(x509_field "$work/renewal-signer.pem" $field)"
    done
    for field in subject issuer serial not_before not_after; do
        echo "ca_$field=$(x509_field "$work/depot/ca.pem" $field)"
    done
    for name in ra-sign ra-encrypt; do
        echo "${name//-/_}_subject=$(x509_field "$work/fixture-$name.pem" subject)"
        echo "${name//-/_}_serial=$(x509_field "$work/fixture-$name.pem" serial)"
    done
    echo "ca_sha256_fingerprint=$(x509_field "$work/depot/ca.pem" sha256_fingerprint)"
    for name in ra-sign ra-encrypt; do
        echo "${name//-/_}_sha256_fingerprint=$(x509_field "$work/fixture-$name.pem" sha256_fingerprint)"
    done
    cat "$work/generated.expect"
} >"$out/fixtures.expect"

echo "fixtures written to $out"
