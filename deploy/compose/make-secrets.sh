#!/usr/bin/env bash
# Makes the compose stack's secrets, once: the database password, an Ed25519
# JWT signing key, the admin password and the accounts page's CSRF secret.
# Existing files are kept, so tokens and the database survive a re-run.
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
# Rewritten every run from the files above, so they always agree.
printf 'DATABASE_URL=postgresql://gatehouse:%s@postgres:5432/gatehouse\nGATEHOUSE_ADMIN_PASSWORD=%s\n' \
  "$(cat "$dir/db_password")" "$(cat "$dir/admin_password")" >"$dir/auth.env"
if [ ! -s "$dir/accounts-ui.env" ]; then
  printf 'GATEHOUSE_ACCOUNTS_UI_CSRF_SECRET=%s\n' "$(random 32)" >"$dir/accounts-ui.env"
fi
chmod 0644 "$dir"/*
echo "secrets in $dir (admin password: $dir/admin_password)"
