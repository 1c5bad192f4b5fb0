#!/bin/sh
# The ablation of CodeRL on MBPP (Pipelines/mbpp.yaml), every arm from the same starting model,
# warm-start, seed, problems and number of steps, then the paired comparisons:
#   A  fine-tuning alone: cross-entropy on the reference solutions of the same problems
#   B  RL without the critic's token weights
#   C  CodeRL: RL with the critic's token weights (the committed recipe)
#   D  (with --with-d) CodeRL without the cross-entropy term (on MBPP it stops ending its
#      programs: Results.md, sixth round)
#   E  (ARMS="... E") RL alone with returns that never push a program down: the pass reward
#      itself (1 passed, 0 otherwise) instead of reward minus baseline, no cross-entropy
#   F  (ARMS="... F") fine-tuning alone on C's curriculum: the same cross-entropy on the same
#      frontier problems as C, without the policy-gradient term (what RL itself adds)
#
#   Pipelines/mbpp-arms.sh [--with-d] [RUNS] [-- extra coderl run options such as --set run.steps=60]
#
# Then, as an out-of-distribution check, greedy pass@1 on HumanEval (164 problems) of the
# starting model and of each arm's last version (ledger RUNS/mbpp-humaneval), compared the same
# way; and sampled pass@1 (10 programs per problem at T = 0.5) on MBPP test and HumanEval
# (ledgers RUNS/mbpp-sampled, RUNS/mbpp-humaneval-sampled), the measure with power.
#
# Each arm is a pipeline run in RUNS/mbpp-ARM (default RUNS: runs); an arm whose run finished
# is not trained again (running this again after an interruption resumes where it stopped).
# Arm A evaluates the held-out problems at all three points (the starting model, after
# warm-start, after training); the others only after training: their starting model and
# warm-start are A's (same seed and settings; the script checks that their warm-start losses
# are A's). Arms run one after the other (on 2 cores each takes about an hour), or JOBS at a
# time (JOBS=2: two arms side by side in about 1.5 hours; the pipeline's own pauses leave room),
# each on ports of its own. Run from the repository root with ../shared/data beside it (MBPP).
set -euf
arms=${ARMS:-A B C}   # ARMS="A C" runs only those
jobs=${JOBS:-1}       # arms trained at once
if [ "${1:-}" = "--with-d" ]; then arms="A B C D"; shift; fi
runs=${1:-runs}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
coderl=${CODERL:-.build/release/coderl}
mkdir -p "$runs"
arm_dir() { echo "$runs/mbpp-$(echo "$1" | tr 'A-Z' 'a-z')"; }

# The k-th arm run at once listens on ports of its own (the first keeps Pipelines/mbpp.yaml's).
ports() {
  [ "$1" -eq 0 ] && return
  p=$((5721 + 10 * $1))
  echo "--set endpoints.params=tcp://127.0.0.1:$p --set endpoints.announcements=tcp://127.0.0.1:$((p + 1))" \
    "--set endpoints.samples=tcp://127.0.0.1:$((p + 2)) --set endpoints.rollouts=tcp://127.0.0.1:$((p + 3))" \
    "--set endpoints.executors=tcp://127.0.0.1:$((p + 4)) --set metrics.port=$((9464 + 20 * $1))"
}

i=0
for arm in $arms; do
  case $arm in
    # Two samples per problem only train the critic: the actor sees none of them.
    A) set_arm="--set training.rl_weight=0 --set training.ce_weight=1 --set training.curriculum=all --set sampling.samples_per_problem=2" ;;
    B) set_arm="--set training.critic_weights=false" ;;
    C) set_arm="" ;;
    D) set_arm="--set training.ce_weight=0" ;;
    E) set_arm="--set training.ce_weight=0 --set training.return=absolute" ;;
    F) set_arm="--set training.rl_weight=0" ;;
    *) echo "mbpp-arms.sh: no arm '$arm' (the arms are A B C D E F)" >&2; exit 2 ;;
  esac
  [ $arm = A ] || set_arm="$set_arm --set data.heldout_points=[after]"
  dir=$(arm_dir $arm)
  echo "== arm $arm: $dir"
  # shellcheck disable=SC2086
  ( "$coderl" run Pipelines/mbpp.yaml --set run.dir="$dir" $set_arm $(ports $((i % jobs))) "$@" 2>&1 | tee -a "$dir.log" \
      | grep -E "^(step|warm-start|held-out|trained|Error)" | sed "s/^/[$arm] /" || true ) &
  i=$((i + 1))
  [ $((i % jobs)) -eq 0 ] && wait
done
wait

# The arms share A's starting point only if their warm-start went the same way.
for arm in $arms; do
  dir=$(arm_dir $arm)
  if [ "$(grep '^warm-start' "$dir.log" | cut -d'|' -f1-2 | sort -u)" != "$(grep '^warm-start' "$(arm_dir A).log" | cut -d'|' -f1-2 | sort -u)" ]; then
    echo "arm $arm: its warm-start losses differ from arm A's: compare it with its own warm-start (coderl compare $dir:warm ...)" >&2
  fi
done

echo
echo "== each arm against the starting model and against the warm-start (arm A's evaluations)"
for arm in $arms; do
  dir=$(arm_dir $arm)
  echo "-- $arm: before -> after";     "$coderl" compare "$(arm_dir A):before" "$dir:after" || true
  echo "-- $arm: warm-start -> after"; "$coderl" compare "$(arm_dir A):warm" "$dir:after" || true
done
echo
echo "== CodeRL (C) against the other arms"
for arm in $arms; do
  [ "$arm" = C ] && continue
  dir=$(arm_dir $arm)
  echo "-- $arm -> C"; "$coderl" compare "$dir:after" "$(arm_dir C):after" || true
done

# Each arm's last actor version, or nothing (with a message) when it has none.
last_version() {
  v=$(ls "$(arm_dir "$1")/weights/actor" | sed -n 's/^v0*\([0-9][0-9]*\)\.safetensors$/\1/p' | sort -n | tail -1)
  [ -n "$v" ] || echo "arm $1: no actor version in $(arm_dir "$1")/weights" >&2
  echo "$v"
}

# evaluate LEDGER EVAL-OPTIONS...: the starting model, then each arm's last version; then
# each arm against the start and C against each other arm.
precision=fp32
grep -qw avx512_bf16 /proc/cpuinfo && precision=bf16
evaluate() {
  ledger=$1; shift
  "$coderl" eval "$@" --precision $precision --ledger "$ledger" --id base >/dev/null
  for arm in $arms; do
    last=$(last_version $arm); [ -n "$last" ] || continue
    "$coderl" eval "$@" --precision $precision --model "$last" --weights "$(arm_dir $arm)/weights" --ledger "$ledger" --id "arm-$arm" >/dev/null
    echo "-- starting model -> $arm (v$last)"; "$coderl" compare base "arm-$arm" --ledger "$ledger" || true
  done
  for arm in $arms; do
    [ "$arm" = C ] || [ -z "$(last_version $arm 2>/dev/null)" ] || [ -z "$(last_version C 2>/dev/null)" ] && continue
    echo "-- $arm -> C"; "$coderl" compare "arm-$arm" arm-C --ledger "$ledger" || true
  done
}

echo
echo "== HumanEval (greedy pass@1), out of distribution"
evaluate "$runs/mbpp-humaneval/ledger" --dataset humaneval --data-dir ../shared/data --samples 1 --temperature 0 --k 1

# Greedy pass@1 scores each problem 0 or 1; ten programs per problem at the temperature the arms
# sampled at score it in tenths, the quantity RL optimises (the expected pass rate of a sample),
# and the permutation test then has the power the solved-or-not counts lack.
echo
echo "== MBPP test, sampled pass@1 (10 programs per problem, T = 0.5)"
evaluate "$runs/mbpp-sampled/ledger" --dataset mbpp --split test --data-dir ../shared/data --samples 10 --temperature 0.5 \
  --k 1,10 --max-new-tokens 192
echo
echo "== HumanEval, sampled pass@1 (10 programs per problem, T = 0.5)"
evaluate "$runs/mbpp-humaneval-sampled/ledger" --dataset humaneval --data-dir ../shared/data --samples 10 --temperature 0.5 \
  --k 1,10 --max-new-tokens 192
