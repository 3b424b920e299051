#!/usr/bin/env bash
# clade results | predictions | log without a usable database: a missing file is one error line
# naming the path, exit 1, and nothing is created; a non-database is refused; bad usage exits 2.
# (tests/unit/test_store.c checks the output on a real database.)
set -u
: "${CLADE:?CLADE must name the clade binary}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }

# expect CODE CMD...: exit status CODE, nothing on stdout, exactly one line on stderr for CODE 1
expect() {
  local want=$1; shift
  "$CLADE" "$@" >out.txt 2>err.txt
  local rc=$?
  [ "$rc" = "$want" ] || bad "clade $* exited $rc, expected $want: $(cat err.txt)"
  [ -s out.txt ] && bad "clade $* wrote to stdout: $(head -c 200 out.txt)"
  if [ "$want" = 1 ]; then
    [ "$(wc -l <err.txt)" = 1 ] || bad "clade $*: expected one stderr line, got: $(cat err.txt)"
  fi
}

for cmd in results predictions log; do
  expect 1 "$cmd"
  grep -q 'results/clade.db' err.txt || bad "$cmd: the error does not name results/clade.db: $(cat err.txt)"
  [ -e results ] && bad "$cmd created results/ while reading"
  expect 1 "$cmd" --db sub/dir/x.db
  grep -q 'sub/dir/x.db' err.txt || bad "$cmd: the error does not name sub/dir/x.db"
  [ -e sub ] && bad "$cmd created sub/ while reading"
done

printf 'not a database, just text that is long enough to look like a header......\n' >junk.db
expect 1 results --db junk.db --format csv
grep -q 'junk.db' err.txt || bad "junk.db: the error does not name the file: $(cat err.txt)"
: >empty.db
expect 1 log --db empty.db
grep -q 'not a clade' err.txt || bad "empty.db: $(cat err.txt)"

expect 2 results --format xml
expect 2 results --run 0
expect 2 results --run abc
expect 2 results --db
expect 2 predictions --format table
expect 2 log --format csv
expect 2 log extra-argument

"$CLADE" help results >out.txt 2>&1 || bad "clade help results failed"
grep -q 'run,experiment,model,dataset,protocol,text_type,shots,trial,metric,value' out.txt ||
  bad "help results lacks the csv columns"
"$CLADE" help | grep '^  log ' >/dev/null || bad "clade help does not list log"

[ "$fail" = 0 ] && echo "test_results_cli: ok"
exit "$fail"
