#!/usr/bin/env bash
# The embedding cache never serves a damaged entry and never fails a run: a zeroed vector
# fails its checksum and is encoded again (said so); a cache file that is not a database is
# moved aside and a new one begun; a cache from before checksums is migrated and its
# unchecked rows encoded again. Each run equals a clean run made apart.
set -euo pipefail
: "${CLADE:?}" "${CLADE_SRC:?}"
source "$CLADE_SRC/tests/lib/common.sh"
sample_zero_shot
sql() { $PY -c 'import sqlite3, sys; d = sqlite3.connect(sys.argv[1]); print(*d.executescript(sys.argv[2]) and d.execute(sys.argv[3]).fetchone()); d.commit()' "$@"; }

# 1. zero one image vector and one text vector in place: both fail their checksum
"$CLADE" run "$T/x.lua" --db "$T/c/r.db" --quiet 2>/dev/null
for kind in image text; do
  sql "$T/c/cache.db" "UPDATE embeddings SET vec = zeroblob(length(vec)) WHERE item_key =
    (SELECT item_key FROM embeddings WHERE kind = '$kind' ORDER BY item_key LIMIT 1) AND kind = '$kind';" "SELECT changes()" >/dev/null
done
"$CLADE" run "$T/x.lua" --db "$T/c/r.db" --quiet 2> "$T/err" || fail "run over a corrupt entry: $(cat "$T/err")"
grep -q "cache.db: 1 cached image embedding failed its checksum (a corrupt entry): encoding it again" "$T/err" ||
  fail "no word of the corrupt image entry: $(cat "$T/err")"
grep -q "cache.db: 1 cached text embedding failed its checksum" "$T/err" || fail "no word of the corrupt text entry: $(cat "$T/err")"
same_rows "$T/c/r.db" 2 "$T/clean.rows" "a run over corrupt cache entries"
# encoded again means stored again, sound: a third run is served whole from the cache
"$CLADE" run "$T/x.lua" --db "$T/c/r.db" 2> "$T/err" || fail "third run: $(cat "$T/err")"
grep -q "nothing encoded" "$T/err" || fail "the re-encoded entries were not stored again: $(cat "$T/err")"
! grep -q checksum "$T/err" || fail "the re-encoded entries still fail: $(cat "$T/err")"
intact "$T/c/cache.db"

# 2. a cache file that is not a database: moved aside, a new cache begun, the run complete
mkdir -p "$T/n"
echo "not a database, not at all, but long enough to have a header" > "$T/n/cache.db"
"$CLADE" run "$T/x.lua" --db "$T/n/r.db" --quiet 2> "$T/err" || fail "run over a junk cache file: $(cat "$T/err")"
grep -q "cache.db: .*moved it to .*cache.db.damaged-[0-9]* and starting a new embedding cache" "$T/err" ||
  fail "no word of the junk cache file: $(cat "$T/err")"
ls "$T"/n/cache.db.damaged-* >/dev/null || fail "the junk file was not kept aside"
same_rows "$T/n/r.db" 1 "$T/clean.rows" "a run over a junk cache file"
intact "$T/n/cache.db"

# 3. a cache made before checksums (user_version 0, no crc column), holding a zeroed vector:
#    migrated, its unchecked rows never served
mkdir -p "$T/o"
$PY - "$T/c/cache.db" "$T/o/cache.db" <<'PY'
import sqlite3, sys
new, old = sqlite3.connect(sys.argv[1]), sqlite3.connect(sys.argv[2])
old.executescript("""
CREATE TABLE files(path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, hash TEXT NOT NULL);
CREATE TABLE embeddings(model_key TEXT NOT NULL, kind TEXT NOT NULL, item_key TEXT NOT NULL,
  dim INTEGER NOT NULL, vec BLOB NOT NULL, created_at REAL NOT NULL, used_at REAL NOT NULL,
  PRIMARY KEY(model_key, kind, item_key)) WITHOUT ROWID;""")
rows = new.execute("SELECT model_key, kind, item_key, dim, vec, created_at, used_at FROM embeddings").fetchall()
rows[0] = rows[0][:4] + (bytes(len(rows[0][4])),) + rows[0][5:]
old.executemany("INSERT INTO embeddings VALUES (?,?,?,?,?,?,?)", rows)
old.commit()
PY
"$CLADE" run "$T/x.lua" --db "$T/o/r.db" --quiet 2> "$T/err" || fail "run over an old cache: $(cat "$T/err")"
same_rows "$T/o/r.db" 1 "$T/clean.rows" "a run over a cache from before checksums"
[ "$(sql "$T/o/cache.db" "" "PRAGMA user_version")" = 1 ] || fail "the old cache was not migrated"
[ "$(sql "$T/o/cache.db" "" "SELECT COUNT(*) FROM embeddings WHERE crc IS NULL")" = 0 ] || fail "unchecked rows remain"
intact "$T/o/cache.db"
echo "test_cache_faults: corrupt entries, a junk file and an old cache: equal to a clean run"
