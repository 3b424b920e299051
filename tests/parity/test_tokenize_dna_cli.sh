#!/usr/bin/env bash
# clade tokenize --dna: CLIBD's BarcodeBERT ids, one line per sequence, from arguments and from
# --file (shared/fixtures/clibd/dna.txt, whose 9th line is the empty sequence), against the
# dna_tokens CLIBD's get_sequence_pipeline gave (outputs.safetensors).
set -u
[ -x "${CLADE:-}" ] || { echo "skip: CLADE is not set" >&2; exit 77; }
PY=/usr/bin/python3
$PY -c 'import numpy' 2>/dev/null || { echo "SKIP: needs Debian's python3-numpy (apt-get install python3-numpy)" >&2; exit 77; }
F="$CLADE_FIXTURES/clibd"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

"$CLADE" tokenize --dna --file "$F/dna.txt" >"$tmp/ids.txt" || { echo "FAIL tokenize --dna --file" >&2; exit 1; }
$PY - "$CLADE_FIXTURES/tools" "$F/outputs.safetensors" "$tmp/ids.txt" <<'PY' || fail=1
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np, st
want = st.load(sys.argv[2])["dna_tokens"]
got = np.array([[int(x) for x in l.split()] for l in open(sys.argv[3])], dtype=np.int32)
if got.shape != want.shape or (got != want).any():
    sys.exit(f"FAIL --file: ids differ from CLIBD's (shape {got.shape} vs {want.shape})")
PY

# arguments: ACGTA = 3 + 0*256 + 1*64 + 2*16 + 3*4 + 0 = 111, then 131 N-padded 5-mers (<UNK> = 2)
want="0 111$(printf ' 2%.0s' $(seq 131))"
out=$("$CLADE" tokenize --dna ACGTA "")
expect="$want
0$(printf ' 2%.0s' $(seq 132))"
[ "$out" = "$expect" ] || { echo "FAIL arguments: $out" >&2; fail=1; }
# lowercase is not upper-cased (CLIBD does not)
out=$("$CLADE" tokenize --dna acgta | cut -d' ' -f1-3)
[ "$out" = "0 2 2" ] || { echo "FAIL lowercase: $out" >&2; fail=1; }

printf 'ACGTA\nAC\xc3\n' >"$tmp/bad.txt"
"$CLADE" tokenize --dna --file "$tmp/bad.txt" >"$tmp/out" 2>"$tmp/err"
[ $? -ne 0 ] || { echo "FAIL bad UTF-8 accepted" >&2; fail=1; }
grep -q "^clade: .*bad.txt:2: invalid UTF-8" "$tmp/err" || { echo "FAIL bad UTF-8 message: $(cat "$tmp/err")" >&2; fail=1; }
"$CLADE" tokenize --dna >/dev/null 2>&1
[ $? -eq 2 ] || { echo "FAIL --dna without sequences is not a usage error" >&2; fail=1; }

[ $fail -eq 0 ] && echo "test_tokenize_dna_cli: ok"
exit $fail
