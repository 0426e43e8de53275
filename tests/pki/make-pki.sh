#!/bin/sh
# SPDX-License-Identifier: MIT
# make-pki.sh OUTDIR - a throwaway test PKI for imapkit's TLS tests and the
# private test servers (tests/pki/README lists the files and what each is for).
#
# Everything is made with the openssl command line, EC P-256 keys (fast), no
# prompts. Idempotent: when OUTDIR/ca.pem is younger than a day and every
# file is there, nothing is done. A lock (flock, where available) keeps two
# concurrent runs from mixing their sets; files are made in a scratch
# directory and moved into place with ca.pem last, so a complete ca.pem means
# a complete set. Keys are mode 0644 on purpose: they protect nothing, and a
# server started as another user (an unprivileged Dovecot) must read them.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
out=$1
command -v openssl >/dev/null 2>&1 || { echo "make-pki.sh: the openssl command is missing" >&2; exit 1; }
mkdir -p "$out"

files="ca.pem ca.key good.pem good.key wrong-host.pem wrong-host.key expired.pem expired.key
other-ca.pem other-ca.key unknown-ca.pem unknown-ca.key self-signed.pem self-signed.key"

fresh() {
    [ -n "$(find "$out/ca.pem" -mmin -1440 2>/dev/null)" ] || return 1
    for f in $files; do
        [ -s "$out/$f" ] || return 1
    done
    return 0
}

if command -v flock >/dev/null 2>&1; then
    exec 9>"$out/.lock"
    flock 9
fi
fresh && exit 0

tmp=$(mktemp -d "$out/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

cat >"$tmp/openssl.cnf" <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused

[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[leaf_local]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[leaf_wrong]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:wrong.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[self_signed]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash

# `openssl ca` is the one way (OpenSSL 3.0) to give explicit past dates.
[ca_expired]
database = $ENV::PKI_TMP/index.txt
new_certs_dir = $ENV::PKI_TMP
serial = $ENV::PKI_TMP/serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
[policy_any]
commonName = supplied
CNF
PKI_TMP=$tmp
export PKI_TMP
: >"$tmp/index.txt"
echo 01 >"$tmp/serial"
cnf=$tmp/openssl.cnf

key() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/$1.key" 2>/dev/null
}
ca() { # name CN
    key "$1"
    openssl req -new -x509 -config "$cnf" -extensions v3_ca -key "$tmp/$1.key" \
        -subj "/CN=$2" -days 30 -sha256 -out "$tmp/$1.pem"
}
leaf() { # name CN extensions-section CA-name
    key "$1"
    openssl req -new -config "$cnf" -key "$tmp/$1.key" -subj "/CN=$2" -out "$tmp/$1.csr"
    openssl x509 -req -in "$tmp/$1.csr" -CA "$tmp/$4.pem" -CAkey "$tmp/$4.key" \
        -set_serial "0x$(openssl rand -hex 8)" -days 30 -sha256 \
        -extfile "$cnf" -extensions "$3" -out "$tmp/$1.pem" 2>/dev/null
}

ca ca "imapkit test CA"
ca other-ca "imapkit test other CA"
leaf good localhost leaf_local ca
leaf wrong-host wrong.example leaf_wrong ca
leaf unknown-ca localhost leaf_local other-ca

key expired
openssl req -new -config "$cnf" -key "$tmp/expired.key" -subj "/CN=localhost" -out "$tmp/expired.csr"
openssl ca -batch -config "$cnf" -name ca_expired -cert "$tmp/ca.pem" -keyfile "$tmp/ca.key" \
    -extfile "$cnf" -extensions leaf_local -startdate 20200101000000Z -enddate 20200102000000Z \
    -notext -in "$tmp/expired.csr" -out "$tmp/expired.pem" 2>/dev/null

key self-signed
openssl req -new -x509 -config "$cnf" -extensions self_signed -key "$tmp/self-signed.key" \
    -subj "/CN=localhost" -days 30 -sha256 -out "$tmp/self-signed.pem"

for f in $files; do
    chmod 0644 "$tmp/$f"
done
for f in $files; do
    [ "$f" = ca.pem ] || mv -f "$tmp/$f" "$out/$f"
done
mv -f "$tmp/ca.pem" "$out/ca.pem"
