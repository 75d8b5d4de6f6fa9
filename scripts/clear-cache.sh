#!/usr/bin/env bash
# Removes the dataset cache directory: $HARMONICS_CACHE_DIR, default .harmonics/cache
# (relative to the working directory). Refuses values that would remove something
# else (/, the home directory, a system directory, ., ..) with exit code 2.
# A missing directory is not an error. If a process holds the lock of a cache in it
# (populating or appending), nothing is removed and the exit code is 1.
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

resolved=$(realpath -m -- "$dir")
# / and every directory directly under it (/usr, /etc, /home, /tmp, ...).
[[ $resolved == /*/* ]] || refuse "it resolves to the top-level directory $resolved"
if [[ -n $home ]]; then
    [[ $resolved != "$(realpath -m -- "$home")" ]] || refuse "it resolves to the home directory"
fi
# The working directory and anything above it would take the caller's files with it.
cwd=$(pwd -P)
[[ $cwd/ != "$resolved"/* && $cwd != "$resolved" ]] || refuse "it contains the working directory"

if [[ -d $dir && ! -L $dir ]] && command -v flock >/dev/null; then
    # A process populating or updating a cache holds `.<name>.lock` (flock). Take
    # every lock without waiting and hold it across the removal; if one is held,
    # remove nothing (`cache_cli clear` removes everything but the busy caches).
    busy=()
    while IFS= read -r -d '' lock; do
        exec {fd}<"$lock" || continue
        flock -n "$fd" || busy+=("$lock")
    done < <(find "$dir" -name '.*.lock' -type f -print0)
    if ((${#busy[@]})); then
        for lock in "${busy[@]}"; do
            name=$(basename -- "$lock")
            name=${name#.}
            echo "clear-cache.sh: $(dirname -- "$lock")/${name%.lock} is in use by another process" >&2
        done
        echo "clear-cache.sh: nothing removed; retry when it is done" >&2
        exit 1
    fi
fi

if [[ -e $dir || -L $dir ]]; then
    rm -rf -- "$dir"
    echo "removed $dir"
else
    echo "nothing to remove: $dir does not exist"
fi
