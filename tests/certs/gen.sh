#!/usr/bin/env bash
# Regenerates the natrium test PKI: a CA, a server cert (CN/SAN localhost +
# 127.0.0.1), a client cert and a second client cert for verify_and_map
# (subject O=Natrium/CN=mapped-client, SAN email + URI), valid 2020-01-01 .. 2120-01-01 (backdated so
# clock skew never matters). EC P-256 keys in PKCS#8 PEM. Run from this dir.
set -euo pipefail
START=20200101000000Z
END=21200101000000Z
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
touch "$work/index.txt"
echo 1000 > "$work/serial"
cat > "$work/ca.cnf" <<CNF
[ ca ]
default_ca = testca
[ testca ]
dir = $work
database = $work/index.txt
serial = $work/serial
new_certs_dir = $work
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[ any ]
organizationName = optional
commonName = supplied
[ v3_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ v3_server ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
authorityKeyIdentifier = keyid
[ v3_client ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
authorityKeyIdentifier = keyid
[ v3_mapped ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectAltName = email:alice@natrium.test,URI:spiffe://natrium/alice
authorityKeyIdentifier = keyid
CNF
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
key ca-key.pem
openssl req -new -key ca-key.pem -subj "/CN=Natrium Test CA" -out "$work/ca.csr"
openssl ca -batch -config "$work/ca.cnf" -selfsign -keyfile ca-key.pem -in "$work/ca.csr" \
  -startdate $START -enddate $END -extensions v3_ca -notext -out ca.pem
for leaf in server client mapped; do
  key "$leaf-key.pem"
  subj=/CN=localhost
  [ "$leaf" = client ] && subj=/CN=natrium-test-client
  [ "$leaf" = mapped ] && subj=/O=Natrium/CN=mapped-client
  openssl req -new -key "$leaf-key.pem" -subj "$subj" -out "$work/$leaf.csr"
  openssl ca -batch -config "$work/ca.cnf" -cert ca.pem -keyfile ca-key.pem -in "$work/$leaf.csr" \
    -startdate $START -enddate $END -extensions "v3_$leaf" -notext -out "$leaf-cert.pem"
done
openssl verify -CAfile ca.pem server-cert.pem client-cert.pem mapped-cert.pem
