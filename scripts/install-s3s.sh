#!/usr/bin/env bash
# Installs s3s-fs, the S3 server over a directory (it verifies SigV4 signatures) that
# the S3 tests start on 127.0.0.1, with cargo from crates.io. Does nothing when the
# right version is already on PATH or in cargo's bin directory (cached between runs).
# 0.14.x is the line that builds with rustc 1.95 (0.17 needs 1.96).
set -euo pipefail

want='0.14'
bin_dir="${CARGO_HOME:-$HOME/.cargo}/bin"

installed_version() { # prints the version of the s3s-fs found, if any
    local exe
    if command -v s3s-fs >/dev/null 2>&1; then
        exe=$(command -v s3s-fs)
    elif [[ -x $bin_dir/s3s-fs ]]; then
        exe=$bin_dir/s3s-fs
    else
        return 0
    fi
    { "$exe" --version 2>/dev/null || true; } | awk '{print $2}'
}

case "$(installed_version)" in
    "$want".*) exit 0 ;;
esac

echo "install-s3s: installing s3s-fs ~$want with cargo (a few minutes, once)" >&2
# --locked builds the versions s3s-fs was released with; if that lock cannot be
# used (a yanked crate no longer served), let cargo resolve afresh.
args=(install s3s-fs --version "~$want" --features binary)
if ! nice -n 10 cargo "${args[@]}" --locked; then
    echo "install-s3s: --locked failed; trying without it" >&2
    nice -n 10 cargo "${args[@]}"
fi

version=$(installed_version)
case "$version" in
    "$want".*) echo "install-s3s: s3s-fs $version installed in $bin_dir" >&2 ;;
    *) echo "install-s3s: s3s-fs $want.x is not usable after the install (found '${version}')" >&2; exit 1 ;;
esac
