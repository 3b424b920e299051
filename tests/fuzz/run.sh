#!/usr/bin/env bash
# The fuzz stage: builds the libFuzzer harnesses (tests/fuzz/fuzz_*.c) with clang, ASan and
# UBSan into build-fuzz/, then runs each for FUZZ_SECONDS (default 60) from its seeds: the small
# ones in tests/fuzz/seeds/<name>/ and the fixtures that fit it (../shared/fixtures, read in
# place or copied into the build folder, never into the repository). The corpus grows in
# build-fuzz/corpus/<name>/ across runs. A crash, leak, timeout or sanitizer report fails the
# stage and leaves the input in build-fuzz/crashes/<name>/; make it a regression input with
#   cp build-fuzz/crashes/<name>/crash-* tests/fuzz/regress/<name>/
# (the normal and sanitizer builds replay those as tests fuzz/replay_<name>).
# FUZZ_HARNESSES="safetensors image" runs some only; FUZZ_JOBS runs that many at once.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${FUZZ_SECONDS:-60}
B=${FUZZ_BUILD_DIR:-build-fuzz}
FIX=${CLADE_FIXTURES:-$PWD/../shared/fixtures}
JOBS=${FUZZ_JOBS:-1}
CC=${FUZZ_CC:-clang} cmake -S . -B "$B" -DCLADE_FUZZ=ON -DCLADE_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$B" --target fuzz_all -j "$(nproc)" >/dev/null
all=$(cd tests/fuzz && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//')
harnesses=${FUZZ_HARNESSES:-$all}

# fixture seeds: small files of the kinds each harness reads (copies, in the build folder)
fixture_seeds() {
  local h=$1 d="$B/fixture-seeds/$1"
  rm -rf "$d" && mkdir -p "$d"
  [ -d "$FIX" ] || return 0
  case $h in
    safetensors) find "$FIX" -name '*.safetensors' -size -200k -exec cp -t "$d" {} + ;;
    torchzip) find "$FIX" \( -name '*.pt' -o -name '*.bin' \) -size -200k -exec cp -t "$d" {} + ;;
    pickle) # the data.pkl of every fixture checkpoint
      /usr/bin/python3 - "$d" $(find "$FIX" \( -name '*.pt' -o -name '*.bin' \)) <<'PY'
import sys, zipfile
for i, p in enumerate(sys.argv[2:]):
    try:
        z = zipfile.ZipFile(p)
    except zipfile.BadZipFile:
        continue
    for n in z.namelist():
        if n.endswith("/data.pkl"):
            open(f"{sys.argv[1]}/{i}.pkl", "wb").write(z.read(n))
PY
      ;;
    clip_config) find "$FIX" -name '*config*.json' -exec cp -t "$d" {} + ;;
    manifest) find "$FIX" lua/clade/suites -name '*.csv' -size -200k -exec cp --backup=numbered -t "$d" {} + ;;
    image) find "$FIX/images" \( -name '*.jpg' -o -name '*.png' \) -size -200k -exec cp -t "$d" {} + ;;
    tokenizer) cp -t "$d" "$FIX/templates_bioclip81.txt" "$FIX/text_cases.json" ;;
    lua_decl) cp -t "$d" experiments/*.lua ;;
  esac
}

run_one() {
  local h=$1 log="$B/fuzz-$1.log"
  mkdir -p "$B/corpus/$h" "$B/crashes/$h"
  fixture_seeds "$h"
  local rc=0 dict=()
  [ -f "tests/fuzz/$h.dict" ] && dict=(-dict="tests/fuzz/$h.dict")
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
    "$B/tests/fuzz/fuzz_$h" -max_total_time="$SECS" -timeout=25 -rss_limit_mb=2560 -print_final_stats=1 "${dict[@]}" \
      -artifact_prefix="$B/crashes/$h/" "$B/corpus/$h" "tests/fuzz/seeds/$h" "$B/fixture-seeds/$h" \
      > "$log" 2>&1 || rc=$?
  local execs
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if [ "$rc" != 0 ]; then
    echo "fuzz $h: FAILED (exit $rc) after ${execs:-?} executions; input in $B/crashes/$h/:" >&2
    grep -E "ERROR|SUMMARY|runtime error|Test unit written" "$log" | head -8 >&2
    return 1
  fi
  echo "fuzz $h: ${execs:-?} executions in ${SECS}s, corpus $(ls "$B/corpus/$h" | wc -l) inputs"
}

export -f run_one fixture_seeds
export B FIX SECS
status=0
if [ "$JOBS" -gt 1 ]; then
  printf '%s\n' $harnesses | xargs -P "$JOBS" -I{} bash -c 'run_one {}' || status=1
else
  for h in $harnesses; do run_one "$h" || status=1; done
fi
exit $status
