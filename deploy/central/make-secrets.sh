#!/usr/bin/env bash
# Prepare deploy/central for `docker compose up`: random passwords in ./secrets
# (mode 0600), and ./mosquitto-etc laid out like /etc/mosquitto for the broker
# container: mosquitto.conf and acl from deploy/mosquitto, a password file with
# the users ingest, alerts and dispatch, and a throwaway CA + server certificate
# (CN/SAN mosquitto, localhost and $KLANKKAST_BROKER_HOST if set).
#
#   KLANKKAST_BROKER_HOST=broker.example.nl ./make-secrets.sh
#
# Existing files are kept (run it again safely); delete one to regenerate it.
# Needs openssl, and mosquitto_passwd (Debian: mosquitto) or docker.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"
umask 077

mkdir -p secrets mosquitto-etc/certs
gen() { [[ -s secrets/$1 ]] || openssl rand -base64 24 | tr -d '/+=\n' >"secrets/$1"; }
for name in mqtt-ingest mqtt-alerts mqtt-dispatch influx-admin influx-ingest influx-grafana grafana-admin \
    influx-courtyard-read influx-courtyard-write influx-analysis; do
    gen "$name.password"
done
# the residents' page's server key (sessions, CSRF, household hashes): 32 random bytes
[[ -s secrets/courtyard.key ]] || openssl rand -hex 32 >secrets/courtyard.key

cp ../mosquitto/mosquitto.conf mosquitto-etc/mosquitto.conf
[[ -f mosquitto-etc/acl ]] || cp ../mosquitto/acl mosquitto-etc/acl

if [[ ! -s mosquitto-etc/passwd ]]; then
    : >mosquitto-etc/passwd
    for user in ingest alerts dispatch; do
        pw=$(cat "secrets/mqtt-$user.password")
        if command -v mosquitto_passwd >/dev/null; then
            mosquitto_passwd -b mosquitto-etc/passwd "$user" "$pw"
        else
            docker run --rm -v "$here/mosquitto-etc:/etc/mosquitto" eclipse-mosquitto:2.0.20 \
                mosquitto_passwd -b /etc/mosquitto/passwd "$user" "$pw"
        fi
    done
fi

certs=mosquitto-etc/certs
if [[ ! -s $certs/server.crt ]]; then
    san="DNS:mosquitto,DNS:localhost,IP:127.0.0.1"
    [[ -n ${KLANKKAST_BROKER_HOST:-} ]] && san="$san,DNS:$KLANKKAST_BROKER_HOST"
    openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -subj "/CN=klankkast CA" \
        -keyout "$certs/ca.key" -out "$certs/ca.crt" 2>/dev/null
    openssl req -newkey rsa:3072 -nodes -subj "/CN=mosquitto" \
        -keyout "$certs/server.key" -out "$certs/server.csr" 2>/dev/null
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" >"$certs/server.ext"
    openssl x509 -req -in "$certs/server.csr" -CA "$certs/ca.crt" -CAkey "$certs/ca.key" \
        -CAcreateserial -days 825 -extfile "$certs/server.ext" -out "$certs/server.crt" 2>/dev/null
    rm -f "$certs/server.csr" "$certs/server.ext"
fi
# the broker runs as user mosquitto inside its container; the CA certificate is public
chmod 0644 mosquitto-etc/mosquitto.conf mosquitto-etc/acl "$certs/ca.crt" "$certs/server.crt"
# mosquitto reads its key and password file as user mosquitto (uid 1883 in the image)
if [[ $(id -u) -eq 0 ]]; then
    chown 1883:1883 "$certs/server.key" mosquitto-etc/passwd
    chmod 0600 "$certs/server.key" mosquitto-etc/passwd
else
    chmod 0644 "$certs/server.key" mosquitto-etc/passwd
    echo "make-secrets.sh: not root, so server.key and passwd are world-readable; chown them to uid 1883 and chmod 0600 on a shared host" >&2
fi
chmod 0755 mosquitto-etc "$certs"
chmod 0644 secrets/*.password secrets/courtyard.key   # read by the service users inside the containers
echo "make-secrets.sh: secrets in $here/secrets, broker files in $here/mosquitto-etc"
echo "Grafana admin password: $(cat secrets/grafana-admin.password)"
