#!/usr/bin/env bash
# Fails when git tracks a file over 1 MiB outside test fixtures: profiler
# output, databases, models and build artefacts never belong in the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
limit=$((1024 * 1024))
status=0
while IFS= read -r -d '' path; do
    case "$path" in
        */fixtures/*) continue ;;
    esac
    [ -f "$path" ] || continue
    size=$(stat -c %s "$path")
    if [ "$size" -gt "$limit" ]; then
        echo "large-files: $path is $size bytes (limit $limit outside fixtures/)" >&2
        status=1
    fi
done < <(git ls-files -z)
exit "$status"
