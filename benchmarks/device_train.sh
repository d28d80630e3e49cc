#!/usr/bin/env bash
# Train benchmark recipes on a lent GPU machine with the Keras JAX backend
# (that machine has JAX with CUDA but no TensorFlow; Keras and its two small
# dependencies travel as wheels in .whl/, the data in .devdata/).
#
#   bash benchmarks/device_train.sh lm:ptb-small lm:ptb-medium-tied ...
#   bash benchmarks/device_train.sh translate:mt-multi30k translate:mt-multi30k:b128:batch_size=128,lr=0.0015
#
# A job is TASK:RECIPE[:NAME[:KEY=VALUE,...]]: NAME (default RECIPE) names the
# run, the settings override the recipe's. LiteRT parts need TensorFlow and are
# built afterwards where it is installed (lstmtext export --format litert).
# EVALUATE=0 skips the validation evaluation there.
#
# Jobs run concurrently on the one GPU, each cut off after $LIMIT seconds
# (model-best always holds the last completed epoch's best). Bundles come
# back as tarballs in $OUT, split into 15 MB parts.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1 LSTMTEXT_LITE_PARTS=0
DATA=${DATA:-.devdata}; LIMIT=${LIMIT:-480}; OUT=${OUT:-/tmp/out}
nvidia-smi -L
python3 -c "import keras, jax; print('keras', keras.__version__, 'jax', jax.__version__, jax.devices())"
declare -A ARGS=(
  [lm]="--train $DATA/ptb/ptb.train.txt --valid $DATA/ptb/ptb.valid.txt"
  [ner]="--train $DATA/conll2003/train.txt --valid $DATA/conll2003/valid.txt"
  [translate]="--train-source $DATA/multi30k/train.en --train-target $DATA/multi30k/train.de --valid-source $DATA/multi30k/val.en --valid-target $DATA/multi30k/val.de"
)
parse() {  # job -> task recipe name sets
  IFS=: read -r task recipe name sets <<< "$1"; name=${name:-$recipe}
}
for job in "$@"; do
  parse "$job"; extra=()
  IFS=, read -ra kv <<< "${sets:-}"; for s in "${kv[@]}"; do extra+=(--set "$s"); done
  ( start=$(date +%s)
    timeout "$LIMIT" python3 cli.py train "$task" ${ARGS[$task]} --config "benchmarks/recipes/$recipe.toml" \
      --output "runs/$name" --overwrite --set jit_compile=true "${extra[@]}" > "runs-$name.log" 2>&1
    echo "$name exit=$? seconds=$(( $(date +%s) - start ))" >> status.txt ) &
done
wait
cat status.txt
declare -A EVAL=(
  [lm]="$DATA/ptb/ptb.valid.txt"
  [ner]="$DATA/conll2003/valid.txt"
  [translate]="--source $DATA/multi30k/val.en --target $DATA/multi30k/val.de"
)
for job in "$@"; do
  parse "$job"; ship=model-best
  [ -d "runs/$name/model-best" ] || continue
  [ "${EVALUATE:-1}" = 0 ] || python3 cli.py evaluate "runs/$name/model-best" ${EVAL[$task]} --json > "eval-$name.json" 2>> "runs-$name.log"
  if [ "$task" = lm ]; then  # ship float16 weights; evaluate them too
    python3 cli.py export "runs/$name/model-best" --output "runs/$name/model-f16" --dtype float16 >> "runs-$name.log" 2>&1 &&
    python3 cli.py evaluate "runs/$name/model-f16" ${EVAL[$task]} --json > "eval-$name-f16.json" 2>> "runs-$name.log" && ship=model-f16
  fi
  tar czf - -C "runs/$name" "$ship" | split -b 15M -d - "$OUT/$name.tgz."
done
logs=(runs-*.log status.txt); for f in eval-*.json; do [ -f "$f" ] && logs+=("$f"); done
head -c 2000 eval-*.json 2>/dev/null
tar czf "$OUT/logs.tgz" "${logs[@]}"
ls -la "$OUT"
