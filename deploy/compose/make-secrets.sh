#!/usr/bin/env bash
# Makes the compose stack's secrets, once: the database password, an Ed25519
# JWT signing key, the admin password, the accounts page's CSRF secret and a
# Redis password per service (gateway, auth), with the Redis ACL file that
# holds their SHA-256 hashes, and a local CA with the certificate the
# gateway's TLS listener (8443) serves (localhost, 127.0.0.1, gateway-1/2;
# trust gateway_ca.pem to call it without -k). Existing files are kept, so tokens and the
# database survive a re-run; the env files and the ACL file are rewritten from
# them every run, so they always agree.
#   deploy/compose/make-secrets.sh [DIR]    (default: $GATEHOUSE_SECRETS_DIR or deploy/compose/.secrets)
# The files are world-readable inside a 0700 folder: compose bind-mounts each
# file and the services read them as their own non-root users.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${1:-${GATEHOUSE_SECRETS_DIR:-$here/.secrets}}"
mkdir -p "$dir"
chmod 0700 "$dir"

random() { openssl rand -hex "$1"; }

if [ ! -s "$dir/db_password" ]; then
  random 24 >"$dir/db_password"
fi
if [ ! -s "$dir/jwt_signing_key.pem" ]; then
  openssl genpkey -algorithm ed25519 -out "$dir/jwt_signing_key.pem"
fi
if [ ! -s "$dir/admin_password" ]; then
  random 16 >"$dir/admin_password"
fi
for user in gateway auth; do
  if [ ! -s "$dir/redis_${user}_password" ]; then
    random 24 >"$dir/redis_${user}_password"
  fi
done
# The gateway's TLS listener: a local CA (ECDSA P-256, 10 years) and a server
# certificate it signs (825 days, the longest clients accept), made once.
if [ ! -s "$dir/gateway_ca.pem" ]; then
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=Gatehouse compose local CA" -keyout "$dir/gateway_ca-key.pem" -out "$dir/gateway_ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  rm -f "$dir/gateway_tls.pem"
fi
if [ ! -s "$dir/gateway_tls.pem" ]; then
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout "$dir/gateway_tls-key.pem" -out "$dir/gateway_tls.csr" 2>/dev/null
  printf '%s\n' 'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature' \
    'extendedKeyUsage=serverAuth' 'subjectAltName=DNS:localhost,DNS:gateway-1,DNS:gateway-2,IP:127.0.0.1' \
    >"$dir/gateway_tls.ext"
  openssl x509 -req -in "$dir/gateway_tls.csr" -CA "$dir/gateway_ca.pem" -CAkey "$dir/gateway_ca-key.pem" \
    -CAcreateserial -days 825 -extfile "$dir/gateway_tls.ext" -out "$dir/gateway_tls.pem" 2>/dev/null
  rm -f "$dir/gateway_tls.csr" "$dir/gateway_tls.ext" "$dir/gateway_ca.srl"
fi

# Rewritten every run from the files above, so they always agree.
redis_password() { tr -d '\n' <"$dir/redis_$1_password"; }
redis_hash() { redis_password "$1" | sha256sum | cut -d' ' -f1; }
# What a service may run: reads, writes, scripts (run and load; not flush, not
# functions), transactions and pub/sub, on its own keys and channels only;
# never an admin or dangerous command (CONFIG, FLUSHALL, KEYS, DEBUG, ...) and
# never the other service's keys, so neither can forge what the other trusts
# (a drained backend, a rate-limit window). Redis checks the keys a script
# touches against the same patterns. TIME: the rate limits' script reads
# Redis's clock, so replicas' clocks never matter.
commands='-@all +@read +@write +@keyspace +@transaction +@pubsub +@connection -@dangerous'
commands="$commands +eval +evalsha +eval_ro +evalsha_ro +script|load +script|exists +time"
# The revocation denylist is shared: auth writes and announces it, the gateway
# only reads and listens (read-only keys, no PUBLISH), so a gateway cannot
# forge a revocation nor lift one.
shared() {
  case $1 in
    gateway) echo '%R~gatehouse:revocation:* &gatehouse:revocation:*' ;;
    auth) echo '~gatehouse:revocation:* &gatehouse:revocation:*' ;;
  esac
}
denied() { [ "$1" = gateway ] && echo ' -publish -spublish'; }
{
  echo 'user default off resetpass resetkeys resetchannels -@all'
  echo 'user healthcheck on nopass resetkeys resetchannels -@all +ping'
  for user in gateway auth; do
    echo "user $user on #$(redis_hash $user) resetkeys ~gatehouse:$user:* resetchannels &gatehouse:$user:* $(shared $user) $commands$(denied $user)"
  done
} >"$dir/redis_users.acl"
printf 'DATABASE_URL=postgresql://gatehouse:%s@postgres:5432/gatehouse\nGATEHOUSE_ADMIN_PASSWORD=%s\nREDIS_URL=redis://auth:%s@redis:6379/0\n' \
  "$(cat "$dir/db_password")" "$(cat "$dir/admin_password")" "$(redis_password auth)" >"$dir/auth.env"
printf 'REDIS_URL=redis://gateway:%s@redis:6379/0\n' "$(redis_password gateway)" >"$dir/gateway.env"
if [ ! -s "$dir/accounts-ui.env" ]; then
  printf 'GATEHOUSE_ACCOUNTS_UI_CSRF_SECRET=%s\n' "$(random 32)" >"$dir/accounts-ui.env"
fi
chmod 0644 "$dir"/*
echo "secrets in $dir (admin password: $dir/admin_password; CA of https://localhost:8443: $dir/gateway_ca.pem)"
