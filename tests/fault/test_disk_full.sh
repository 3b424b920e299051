#!/usr/bin/env bash
# ENOSPC on a small tmpfs (needs root to mount, in a private mount namespace so nothing
# outlives the test): a full disk under the embedding cache warns once and the run completes
# without the cache, whether its hits want used_at refreshed or its misses want storing; a full
# disk under the results database stops the run with a clear message, leaves the database
# intact, and once there is room the rerun resumes and completes. Each equals a clean run.
set -euo pipefail
: "${CLADE:?}" "${CLADE_SRC:?}"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root to mount a small tmpfs" >&2; exit 77; }
source "$CLADE_SRC/tests/lib/common.sh"
private_mounts "$0" "$@"
mkdir -p "$T/m"
mount -t tmpfs -o size=8m tmpfs "$T/m" 2>/dev/null || { echo "SKIP: mounting a tmpfs is not permitted here" >&2; exit 77; }
MOUNTS+=("$T/m")
sample_zero_shot
# fill: the tmpfs full but for $1 KiB
fill() { dd if=/dev/zero of="$T/m/fill" bs=64k 2>/dev/null || true; truncate -s "-$1K" "$T/m/fill"; }
unfill() { rm -f "$T/m/fill"; }
sql() { $PY -c 'import sqlite3, sys; d = sqlite3.connect(sys.argv[1]); d.executescript(sys.argv[2]); d.commit()' "$@"; }

# 1. the cache on a full disk, every entry cached but last used long ago (a hit wants used_at
#    refreshed): the run completes, warning at most once
mkdir -p "$T/a"
ln -s "$T/m/cache.db" "$T/a/cache.db"
"$CLADE" run "$T/x.lua" --db "$T/a/r.db" --quiet 2>/dev/null
sql "$T/m/cache.db" "UPDATE embeddings SET used_at = 0; PRAGMA wal_checkpoint(TRUNCATE);"
fill 48
"$CLADE" run "$T/x.lua" --db "$T/a/r.db" 2> "$T/err" || fail "a cached run on a full disk failed: $(cat "$T/err")"
[ "$(grep -c "warning" "$T/err" || true)" -le 1 ] || fail "more than one warning: $(cat "$T/err")"
grep -q "nothing encoded" "$T/err" || fail "the cached run on a full disk was not served from the cache: $(cat "$T/err")"
same_rows "$T/a/r.db" 2 "$T/clean.rows" "a cached run on a full disk"
unfill
intact "$T/m/cache.db"

# 2. the cache on a full disk, empty (every embedding wants storing): one warning, complete
sql "$T/m/cache.db" "DELETE FROM embeddings; DELETE FROM files; PRAGMA wal_checkpoint(TRUNCATE);"
fill 48
"$CLADE" run "$T/x.lua" --db "$T/a/r.db" --quiet 2> "$T/err" || fail "an uncached run on a full disk failed: $(cat "$T/err")"
[ "$(grep -c "warning: .*cache.db: .*going on without writing to the embedding cache" "$T/err")" = 1 ] ||
  fail "not one warning naming the cache: $(cat "$T/err")"
same_rows "$T/a/r.db" 3 "$T/clean.rows" "an uncached run on a full disk"
unfill
intact "$T/m/cache.db"
rm -f "$T"/m/cache.db*

# 3. the results database on a full disk (its cache elsewhere): a clear message, an intact
#    database, and once there is room, a rerun that resumes and completes
mkdir -p "$T/m/b" "$T/bc"
ln -s "$T/bc/cache.db" "$T/m/b/cache.db"
cat "$T/x.lua" > "$T/y.lua"
cat >> "$T/y.lua" <<LUA
experiment "y" { models = { "m" }, datasets = { "d" }, protocol = few_shot { shots = { 1, 2 }, trials = 3 } }
LUA
"$CLADE" run "$T/y.lua" --db "$T/clean/y.db" --quiet 2>/dev/null
rows "$T/clean/y.db" 1 > "$T/cleany.rows"
"$CLADE" run "$T/x.lua" --db "$T/m/b/r.db" --quiet 2>/dev/null
sql "$T/m/b/r.db" "PRAGMA wal_checkpoint(TRUNCATE);"
fill 48
if "$CLADE" run "$T/y.lua" --db "$T/m/b/r.db" --quiet 2> "$T/err"; then fail "a run onto a full disk succeeded"; fi
grep -q "r.db: .*database or disk is full" "$T/err" || fail "no clear message naming the database: $(cat "$T/err")"
unfill
intact "$T/m/b/r.db"
"$CLADE" run "$T/y.lua" --db "$T/m/b/r.db" --quiet 2> "$T/err" || fail "the rerun with room: $(cat "$T/err")"
same_rows "$T/m/b/r.db" "$(last_complete "$T/m/b/r.db")" "$T/cleany.rows" "the rerun after a full disk"
intact "$T/m/b/r.db"
echo "test_disk_full: cache and results database on a full disk: a warning or a clear stop, then equal to a clean run"
