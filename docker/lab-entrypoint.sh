#!/bin/sh
# A simulated lab in one container: atbridge-sim with $MODEMS modems, and an
# atbridge-agent serving them and dialing out to $SERVER.
#   env: NAME (agent name = its certificate CN), MODEMS (default 3),
#        SERVER (host:port), PKI (directory with ca.pem, $NAME.pem, $NAME.key),
#        SERVER_NAME (TLS name of the server, default atbridge-server)
set -eu
: "${NAME:?NAME is required}" "${SERVER:?SERVER is required}" "${PKI:?PKI is required}"
MODEMS=${MODEMS:-3}
links=$(mktemp -d)
fifo=$(mktemp -u)
mkfifo "$fifo"
atbridge-sim --count "$MODEMS" --link-dir "$links" >"$fifo" &
sim=$!
trap 'kill "$sim" 2>/dev/null' EXIT INT TERM
# Wait for the simulator's readiness line (no sleeps).
while IFS= read -r line; do
  echo "$line"
  case "$line" in "atbridge-sim ready:"*) break ;; esac
done <"$fifo"
cat "$fifo" >/dev/null &
set --
i=0
while [ "$i" -lt "$MODEMS" ]; do
  set -- "$@" --port "modem$i=$links/modem$i,flow=rtscts,label.lab=$NAME"
  i=$((i + 1))
done
atbridge-agent --name "$NAME" --listen 0.0.0.0:7444 \
  --ca "$PKI/ca.pem" --cert "$PKI/$NAME.pem" --key "$PKI/$NAME.key" \
  --server "$SERVER" --server-name "${SERVER_NAME:-atbridge-server}" "$@" &
agent=$!
trap 'kill "$agent" "$sim" 2>/dev/null' EXIT INT TERM
wait "$agent"
