#!/usr/bin/env bash
# Clears the dataset cache directory: $HARMONICS_CACHE_DIR, default .harmonics/cache
# (relative to the working directory). Refuses values that would remove something
# else (/, the home directory, a system directory, ., ..) with exit code 2, also when
# the value is a symbolic link to such a place. A missing directory is not an error.
#
# Only caches (recognised by their content) and the library's own lock and temporary
# files are removed, then the directory if that leaves it empty; any other file is
# kept and listed. Through a symbolic link, the caches of the directory it points to
# are removed (the link and that directory stay). If a process holds the lock of a
# cache (populating or appending), nothing is removed and the exit code is 1.
# The removal itself is `cache_cli clear --all-or-nothing` (tools/cache_cli), so the
# script and the CLI agree on what a cache is.
set -euo pipefail

# Unset means the default; set but blank is a mistake we do not guess about.
dir=${HARMONICS_CACHE_DIR-.harmonics/cache}

refuse() {
    echo "clear-cache.sh: refusing to remove HARMONICS_CACHE_DIR='$dir': $1" >&2
    echo "clear-cache.sh: set HARMONICS_CACHE_DIR to the cache directory itself (default .harmonics/cache)" >&2
    exit 2
}

trimmed=$(printf '%s' "$dir" | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//')
[[ -n $trimmed ]] || refuse "it is empty"
case $trimmed in
    / | // | /. | . | .. | ./ | ../ | '~' | '~/') refuse "it names a root, home or working directory" ;;
esac
home=${HOME:-}
home=${home%/}
if [[ -n $home ]]; then
    [[ ${trimmed%/} != "$home" ]] || refuse "it is the home directory"
fi

# realpath resolves symbolic links: the rules apply to what the value points at.
resolved=$(realpath -m -- "$dir")
# / and every directory directly under it (/usr, /etc, /home, /tmp, ...).
[[ $resolved == /*/* ]] || refuse "it resolves to the top-level directory $resolved"
if [[ -n $home ]]; then
    [[ $resolved != "$(realpath -m -- "$home")" ]] || refuse "it resolves to the home directory"
fi
# The working directory and anything above it would take the caller's files with it.
cwd=$(pwd -P)
[[ $cwd/ != "$resolved"/* && $cwd != "$resolved" ]] || refuse "it contains the working directory"

if [[ ! -e $dir && ! -L $dir ]]; then
    echo "nothing to remove: $dir does not exist"
    exit 0
fi

here=$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")
export HARMONICS_CACHE_DIR=$dir
# Installed (as bin/harmonics-clear-cache), cache_cli sits beside it; in the source
# tree, tools/cache_cli builds and runs it.
if [[ -x $here/cache_cli ]]; then
    exec "$here/cache_cli" clear --all-or-nothing
fi
exec "$here/../tools/cache_cli" clear --all-or-nothing
