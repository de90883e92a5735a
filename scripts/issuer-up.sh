# Sourced by the scripts that need a live offpay-issuer: starts target/debug/offpay-issuer on
# two free loopback ports with its data in a fresh temporary directory, waits until it answers,
# and stops it and removes the directory when the script exits. Sets $dir, $public, $admin,
# $token and $pid. Needs $venv (a virtualenv with Python) set by the caller.

dir=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

free_port() { "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
public=$(free_port)
admin=$(free_port)
target/debug/offpay-issuer serve --data "$dir/issuer" --listen "127.0.0.1:$public" \
    --admin-listen "127.0.0.1:$admin" >"$dir/log" 2>&1 &
pid=$!
up() { "$venv/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "http://127.0.0.1:$public/healthz" 2>/dev/null; }
for _ in $(seq 100); do
    up && break
    sleep 0.1
done
up || { cat "$dir/log"; echo "offpay-issuer did not start" >&2; exit 1; }
token=$(cat "$dir/issuer/admin.token")
