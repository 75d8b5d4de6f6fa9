#!/usr/bin/env bash
# Installs, from Debian's packages, whatever a fresh machine lacks. Does nothing when
# all is present.
#
#   scripts/install-deps.sh        everything the build, the tests and the benchmarks use
#                                  (the test command, scripts/test.sh)
#   scripts/install-deps.sh demo   only what scripts/demo.sh uses: g++ (the C++ example),
#                                  python3 (the HTTP server) and curl (its readiness check)
#
# Rust (cargo) is not installed here: see the README's requirements.
set -euo pipefail

case ${1:-all} in
    all | demo) what=${1:-all} ;;
    *) echo "usage: $0 [demo]" >&2; exit 2 ;;
esac

missing=()
need() { # need <package> <test...>
    local pkg=$1; shift
    if ! "$@" >/dev/null 2>&1; then missing+=("$pkg"); fi
}
need g++            command -v g++
need python3        command -v python3
need curl           command -v curl
if [[ $what == all ]]; then
    need cmake          command -v cmake
    need libgtest-dev   test -e /usr/include/gtest/gtest.h
    need nginx-light    test -x /usr/sbin/nginx
    need valgrind       command -v valgrind
    need pkg-config     command -v pkg-config
    need openssl        command -v openssl
fi

if ((${#missing[@]} == 0)); then
    exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
if [[ $(id -u) -ne 0 ]]; then
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# nginx-light's package starts a system nginx on port 80; the tests start their own.
if [[ " ${missing[*]} " == *" nginx-light "* ]]; then
    if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl stop nginx 2>/dev/null || true; fi
    $SUDO service nginx stop >/dev/null 2>&1 || true
fi
