#!/bin/sh
# Speed before and after a change: the benchmarks of an older checkout (OLD, e.g. made with
# `git worktree add /tmp/old <commit>`; its own benchmarks/ and tfseq2seq/ are used) and of
# this tree, interleaved (new, old, then old, new), one JSON per run in OUT.
#   benchmarks/before_after.sh /tmp/old runs/bench
# translate_speed.py is copied into OLD if it has none (it runs against 0.1.0 too).
set -e
OLD=$(cd "$1" && pwd); OUT=${2:-runs/bench}
HERE=$(cd "$(dirname "$0")/.." && pwd)
PY="$HERE/.venv/bin/python"
export TF_CPP_MIN_LOG_LEVEL=2
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
[ -f "$OLD/benchmarks/translate_speed.py" ] || cp "$HERE/benchmarks/translate_speed.py" "$OLD/benchmarks/"
new() { (cd "$HERE" && $PY benchmarks/$1 $2 > "$OUT/new-$3.json" 2> "$OUT/new-$3.err"); }
old() { (cd "$OLD" && PYTHONPATH="$OLD" $PY benchmarks/$1 $2 > "$OUT/old-$3.json" 2> "$OUT/old-$3.err"); }
TRAIN="--configs peer,tf,ss --batch-sizes 128 --examples 2048 --rounds 2"
TRANSLATE="--words 4096 --rounds 3"
date -u +%FT%TZ > "$OUT/started"
new decode_speed.py "" decode1;      old decode_speed.py "" decode1
new translate_speed.py "$TRANSLATE" translate1; old translate_speed.py "$TRANSLATE" translate1
new train_speed.py "$TRAIN" train1;  old train_speed.py "$TRAIN" train1
old translate_speed.py "$TRANSLATE" translate2; new translate_speed.py "$TRANSLATE" translate2
old decode_speed.py "" decode2;      new decode_speed.py "" decode2
date -u +%FT%TZ > "$OUT/finished"
