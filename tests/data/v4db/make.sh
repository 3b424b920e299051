#!/usr/bin/env bash
# Makes clade_v4.db: a results database of schema 4 (before the retrieval axes), written by
# the clade binary of main at fe0196d (give it as $1), for test_store_migration.sh. Run once:
#   tests/data/v4db/make.sh /path/to/old/clade
# Paths in it are those of a temporary folder; the test only reads them back.
set -euo pipefail
OLD=${1:?usage: make.sh OLD_CLADE}
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$OLD" synth --out "$T/s" 2>/dev/null
cat > "$T/exp.lua" <<LUA
model "tiny" { path = "$T/s/model" }
dataset "rare" { root = "$T/s/data/rare_sample" }
experiment "zs" { models = { "tiny" }, datasets = { "rare" }, protocol = zero_shot { text_types = { "common", "scientific" } } }
experiment "fs" { models = { "tiny" }, datasets = { "rare" }, protocol = few_shot { shots = { 1, 2 }, trials = 3 } }
LUA
rm -f "$HERE/clade_v4.db"
"$OLD" run "$T/exp.lua" --db "$T/r.db" --quiet
"$OLD" run "$T/exp.lua" --db "$T/r.db" --quiet --no-cache 2>/dev/null || "$OLD" run "$T/exp.lua" --db "$T/r.db" --quiet
sqlite3 "$T/r.db" "PRAGMA wal_checkpoint(TRUNCATE); VACUUM;" >/dev/null
cp "$T/r.db" "$HERE/clade_v4.db"
echo "schema $(sqlite3 "$HERE/clade_v4.db" 'PRAGMA user_version'): $HERE/clade_v4.db"
