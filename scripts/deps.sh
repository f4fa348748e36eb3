#!/bin/sh
# Checks the Debian packages caredesk builds and tests with; installs the
# missing ones when run as root, otherwise prints the exact command to run.
PKGS="pkg-config libwebsockets-dev libjansson-dev libsqlite3-dev libstemmer-dev libcmocka-dev libxml2-dev libcurl4-openssl-dev libcmark-dev
      libpq-dev postgresql
      clang libclang-rt-14-dev sqlite3 openssl clang-format cppcheck"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "caredesk: installing build dependencies:$missing" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing) >&2 && exit 0
    echo "caredesk: apt-get failed; run: sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "caredesk: missing build dependencies; run: sudo apt-get install -y$missing" >&2
exit 1
