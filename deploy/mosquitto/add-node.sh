#!/usr/bin/env bash
# Add a klankkast node to the production Mosquitto: create its MQTT user with a
# random password (mosquitto_passwd), append its ACL block (publish only under
# klankkast/v1/{site}/{node}/#, read only its ack topic klankkast/v1/{site}/{node}/ack),
# save the password for the installer, reload
# mosquitto and print the node's node.toml snippet on stdout.
#
#   add-node.sh SITE NODE [--host HOST] [--port PORT] [--rotate] [--no-reload]
#
#   SITE, NODE   identifiers as in the wire contract: [A-Za-z0-9][A-Za-z0-9_.-]{0,63}
#                (the MQTT user name is SITE-NODE)
#   --host HOST  broker host name the node connects to (default: this host's FQDN)
#   --port PORT  TLS port (default 8883)
#   --rotate     the user exists already: give it a new password
#   --no-reload  do not reload mosquitto (also KLANKKAST_NO_RELOAD=1)
#
# Files (environment overrides, defaults for Debian's mosquitto package):
#   KLANKKAST_MOSQUITTO_DIR     /etc/mosquitto
#   KLANKKAST_PASSWORD_FILE     $KLANKKAST_MOSQUITTO_DIR/passwd
#   KLANKKAST_ACL_FILE          $KLANKKAST_MOSQUITTO_DIR/acl
#   KLANKKAST_NODE_SECRETS_DIR  $KLANKKAST_MOSQUITTO_DIR/nodes  (SITE-NODE.password, mode 0600)
#
# Note: mosquitto_passwd -b takes the password as an argument, so it is briefly
# visible to other users of this machine in the process list; run this on the
# broker host, which should have no other users.
set -euo pipefail

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "add-node.sh: $*" >&2; exit 1; }

site="" node="" host="" port=8883 rotate=0 reload=1
[[ ${KLANKKAST_NO_RELOAD:-0} == 1 ]] && reload=0
while (($#)); do
    case $1 in
        -h|--help) usage; exit 0 ;;
        --host) host=${2:?--host needs a value}; shift 2 ;;
        --port) port=${2:?--port needs a value}; shift 2 ;;
        --rotate) rotate=1; shift ;;
        --no-reload) reload=0; shift ;;
        -*) die "unknown option $1 (see --help)" ;;
        *)
            if [[ -z $site ]]; then site=$1
            elif [[ -z $node ]]; then node=$1
            else die "unexpected argument $1 (see --help)"; fi
            shift ;;
    esac
done
[[ -n $site && -n $node ]] || { usage >&2; exit 1; }

id_re='^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'
[[ $site =~ $id_re ]] || die "site must match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}; got '$site'"
[[ $node =~ $id_re ]] || die "node must match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}; got '$node'"
[[ $port =~ ^[0-9]+$ ]] && ((port >= 1 && port <= 65535)) || die "--port must be 1-65535; got '$port'"

dir=${KLANKKAST_MOSQUITTO_DIR:-/etc/mosquitto}
passwd_file=${KLANKKAST_PASSWORD_FILE:-$dir/passwd}
acl_file=${KLANKKAST_ACL_FILE:-$dir/acl}
secrets_dir=${KLANKKAST_NODE_SECRETS_DIR:-$dir/nodes}
[[ -n $host ]] || host=$(hostname -f 2>/dev/null || hostname)

user="$site-$node"
mosquitto_passwd=$(command -v mosquitto_passwd || true)
[[ -n $mosquitto_passwd ]] || die "mosquitto_passwd not found; install with: sudo apt-get install -y mosquitto"
[[ -f $acl_file ]] || die "ACL file $acl_file not found (install deploy/mosquitto/acl there first)"

umask 077
if [[ ! -f $passwd_file ]]; then
    : >"$passwd_file"
fi
if grep -qx "user $user" "$acl_file" && ! grep -qxF "topic write klankkast/v1/$site/$node/#" "$acl_file"; then
    die "user name $user is already taken by another site/node in $acl_file (avoid '-' in site names)"
fi
if grep -q "^${user//./\\.}:" "$passwd_file"; then
    ((rotate)) || die "user $user exists in $passwd_file; pass --rotate to issue a new password"
fi

# 32 random characters from [A-Za-z0-9] (~190 bits).
password=""
while ((${#password} < 32)); do
    password+=$(head -c 512 /dev/urandom | LC_ALL=C tr -dc 'A-Za-z0-9')
done
password=${password:0:32}
"$mosquitto_passwd" -b "$passwd_file" "$user" "$password" \
    || die "mosquitto_passwd could not add $user to $passwd_file"
# mosquitto reads the file after dropping privileges to its own user.
if getent group mosquitto >/dev/null 2>&1; then
    chgrp mosquitto "$passwd_file" 2>/dev/null && chmod 0640 "$passwd_file" || true
fi

if ! grep -qx "user $user" "$acl_file"; then
    {
        echo ""
        echo "# node $user (add-node.sh, $(date -u +%Y-%m-%dT%H:%M:%SZ))"
        echo "user $user"
        echo "topic write klankkast/v1/$site/$node/#"
        echo "topic read klankkast/v1/$site/$node/ack"
    } >>"$acl_file"
fi

mkdir -p "$secrets_dir"
secret="$secrets_dir/$user.password"
printf '%s' "$password" >"$secret"
chmod 0600 "$secret"

if ((reload)); then
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mosquitto 2>/dev/null; then
        systemctl reload mosquitto && echo "add-node.sh: mosquitto reloaded" >&2
    else
        echo "add-node.sh: mosquitto is not running under systemd; reload it yourself (SIGHUP)" >&2
    fi
fi

echo "add-node.sh: user $user added; its password is in $secret" >&2
echo "add-node.sh: copy it to the node as /etc/klankkast/mqtt.password (mode 0640, owner root, group klankkast; as install.sh creates it)" >&2
echo "add-node.sh: and the broker's CA certificate as /etc/klankkast/ca.crt" >&2

cat <<EOF
# node.toml for $user (generated by deploy/mosquitto/add-node.sh)
[node]
site = "$site"
id = "$node"

[mqtt]
url = "mqtts://$host:$port"
username = "$user"
password_file = "/etc/klankkast/mqtt.password"
ca_file = "/etc/klankkast/ca.crt"
EOF
