#!/usr/bin/env bash
# Regenerate committed reference runs: train (the `full` profile's 400 epochs, or with
# PROFILE=tw the Tomczak & Welling protocol), evaluate (IW k=5000 on all 10,000 test images),
# export to vaelib/reference_runs/PROFILE/NAME/ (tw runs: also scored on their code's test binarisation).
#
#   bash benchmarks/make_reference.sh vae-z10 mog-z10-m1000      # the runs named
#   bash benchmarks/make_reference.sh                             # the whole reference set
#   PROFILE=tw bash benchmarks/make_reference.sh tw-standard-z40  # a Tomczak & Welling row
#
# Runs resume where they stopped (fit checkpoints every epoch), so the script can be
# re-run after an interruption. On a 2-core CPU, run two copies at once with
# OMP_NUM_THREADS=1 each; after regenerating, bump vaelib.reference.REFERENCE_VERSION.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export VAELIB_CACHE="${VAELIB_CACHE:-$HOME/.cache/vaelib/reference-runs}"
profile="${PROFILE:-full}"
names=("$@")
if [ "${#names[@]}" -eq 0 ] && [ "$profile" = tw ]; then
    names=(tw-standard-z40 tw-mog-z40-m500 tw-vamp-z40-k500)
elif [ "${#names[@]}" -eq 0 ]; then
    names=(vae-z10 mog-z10-m10 mog-z10-m1000 fmog-z10-m1000 vae-z2 mog-z2-m1000)
fi
for name in "${names[@]}"; do
    echo "== $name: train ($(date -u +%FT%TZ))"
    python -m vaelib train "$name" --profile "$profile" --device "${DEVICE:-cpu}"
    echo "== $name: evaluate ($(date -u +%FT%TZ))"
    python -m vaelib evaluate "$name" --profile "$profile" --device "${DEVICE:-cpu}" --quiet
    echo "== $name: export ($(date -u +%FT%TZ))"
    python -m vaelib export-reference "$name" --profile "$profile"
    if [ "$profile" = tw ]; then
        echo "== $name: score on their test binarisation ($(date -u +%FT%TZ))"
        python benchmarks/score_their_binarization.py "$name" --profile tw
    fi
done
