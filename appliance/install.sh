#!/bin/sh
# Installs (or upgrades) Portcullis on a systemd host. Idempotent: safe to run again.
#   sudo ./appliance/install.sh [PATH/TO/portcullis-binary]
set -eu

BIN_SRC=${1:-dist/portcullis}
HERE=$(cd "$(dirname "$0")" && pwd)
USER_NAME=portcullis
BIN=/usr/local/bin/portcullis
ETC=/etc/portcullis
STATE=/var/lib/portcullis
UNIT=/etc/systemd/system/portcullis.service

if [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (sudo)" >&2
  exit 1
fi
if [ ! -x "$BIN_SRC" ]; then
  echo "install.sh: no executable at $BIN_SRC; build it with 'bun run build' or pass its path" >&2
  exit 1
fi

# 1. The service account: a system user with no shell and no home of its own.
if ! getent group "$USER_NAME" >/dev/null; then
  groupadd --system "$USER_NAME"
fi
if ! id -u "$USER_NAME" >/dev/null 2>&1; then
  useradd --system --gid "$USER_NAME" --home-dir "$STATE" --no-create-home --shell /usr/sbin/nologin "$USER_NAME"
fi

# 2. Directories: configuration readable by the service, state private to it.
install -d -m 0755 -o root -g "$USER_NAME" "$ETC"
install -d -m 0700 -o "$USER_NAME" -g "$USER_NAME" "$STATE"

# 3. The binary (replaced atomically so a running service keeps its old inode).
install -m 0755 -o root -g root "$BIN_SRC" "$BIN.new"
mv -f "$BIN.new" "$BIN"

# 4. Configuration: never overwrite an administrator's file.
if [ ! -e "$ETC/portcullis.toml" ]; then
  install -m 0640 -o root -g "$USER_NAME" "$HERE/portcullis.toml" "$ETC/portcullis.toml"
else
  echo "install.sh: keeping existing $ETC/portcullis.toml"
fi

# 5. The sealing key (AES-256-GCM for OTP seeds and RADIUS secrets).
#    With systemd-creds: a fresh key is encrypted to $KEY_CRED (bound to this host's TPM or
#    /var/lib/systemd/credential.secret) and reaches the service only as $CREDENTIALS_DIRECTORY/
#    portcullis.key; admin commands then run through portcullis-admin, which gets the same credential.
#    Without it: the service creates $STATE/portcullis.key (mode 0600, O_EXCL) on first start, and
#    admin commands run as `sudo -u portcullis portcullis …`.
#    An existing key is never replaced: secrets sealed with it would be lost.
KEY_CRED="$ETC/portcullis.key.cred"
KEY_FILE="$STATE/portcullis.key"
GUARD="# This appliance's key is the systemd credential $KEY_CRED.
# Run admin commands with: sudo portcullis-admin COMMAND ...   (this file holds no key on purpose)"
if [ ! -e "$KEY_CRED" ] && [ ! -e "$KEY_FILE" ] && command -v systemd-creds >/dev/null 2>&1; then
  tmp=$(mktemp)
  # 32 random bytes, base64: a bare key, which the keyring accepts from a credential.
  head -c 32 /dev/urandom | base64 > "$tmp"
  if systemd-creds encrypt --name=portcullis.key "$tmp" "$KEY_CRED.tmp"; then
    chmod 0600 "$KEY_CRED.tmp"
    mv "$KEY_CRED.tmp" "$KEY_CRED"
    # A key file without a key: a plain `portcullis` run outside the credential fails loudly
    # instead of creating a second key that the service could not read.
    printf '%s\n' "$GUARD" > "$KEY_FILE"
    chown "$USER_NAME:$USER_NAME" "$KEY_FILE"
    chmod 0600 "$KEY_FILE"
    echo "install.sh: key encrypted to $KEY_CRED"
  else
    rm -f "$KEY_CRED.tmp"
    echo "install.sh: systemd-creds encrypt failed; the service will create $KEY_FILE instead" >&2
  fi
  # Overwrite the plaintext before removing it.
  head -c 64 /dev/zero > "$tmp"
  rm -f "$tmp"
fi

if [ -e "$KEY_CRED" ]; then
  cat > /usr/local/sbin/portcullis-admin.new <<ADMIN
#!/bin/sh
# Runs a portcullis admin command as the service user, with the service's encrypted key credential.
exec systemd-run --quiet --pipe --wait --collect --service-type=exec \\
  -p User=$USER_NAME -p Group=$USER_NAME \\
  -p LoadCredentialEncrypted=portcullis.key:$KEY_CRED \\
  -p Environment=PORTCULLIS_CONFIG=$ETC/portcullis.toml \\
  $BIN "\$@"
ADMIN
  chmod 0755 /usr/local/sbin/portcullis-admin.new
  mv -f /usr/local/sbin/portcullis-admin.new /usr/local/sbin/portcullis-admin
fi

# 5b. Let the RADIUS socket get its 8 MiB receive buffer (radius.recv_buffer_bytes): an unprivileged
# service is capped by net.core.rmem_max, whose default (208 KiB) drops packets under a burst.
SYSCTL=/etc/sysctl.d/60-portcullis.conf
if [ ! -e "$SYSCTL" ]; then
  printf '# Portcullis: room for RADIUS bursts in the UDP receive buffer\nnet.core.rmem_max = 8388608\n' > "$SYSCTL"
  chmod 0644 "$SYSCTL"
  sysctl -q -p "$SYSCTL" 2>/dev/null || echo "install.sh: could not apply $SYSCTL now; it applies at the next boot" >&2
fi

# 6. The unit. Without an encrypted credential the key file in the state directory is used.
if [ -e "$KEY_CRED" ]; then
  cp "$HERE/portcullis.service" "$UNIT.tmp"
else
  sed "s|^LoadCredentialEncrypted=.*|# No systemd-creds on this host: the key file is $KEY_FILE (mode 0600).|" \
    "$HERE/portcullis.service" > "$UNIT.tmp"
fi
chmod 0644 "$UNIT.tmp"
mv -f "$UNIT.tmp" "$UNIT"

if command -v systemd-analyze >/dev/null 2>&1; then
  systemd-analyze verify "$UNIT" || echo "install.sh: systemd-analyze reported problems (see above)" >&2
fi
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable portcullis.service
  systemctl restart portcullis.service
  echo "install.sh: portcullis is running; check with: systemctl status portcullis"
else
  echo "install.sh: systemd is not running here; start it later with: systemctl enable --now portcullis"
fi
if [ -e "$KEY_CRED" ]; then ADMIN="sudo portcullis-admin"; else ADMIN="sudo -u $USER_NAME portcullis"; fi
echo "install.sh: add a RADIUS client with: $ADMIN client add NAME --address CIDR --secret-stdin"
