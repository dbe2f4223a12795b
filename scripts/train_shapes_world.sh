#!/usr/bin/env bash
# Train the Shapes World default model on one GPU with the stage configs in configs/stages/shapes_world/.
#
# Each stage trains for a total time budget (minutes, below; override with MINUTES_<STAGE>=N) in runs of
# at most RUN_MINUTES (default 8) that end with a checkpoint: kill the script at any point and start it
# again, and it resumes where the last checkpoint left off. The finished model folder (fp16) is
# runs/shapes_world/interpolation/model; use it with --model, or copy it over emu_video/default_model.
# Extra arguments are passed to every `emu-video train` call (e.g. train.compile="blocks").
#
# STAGES="extension keyframes" trains only the long-video layouts on top of the shipped model (their configs
# start from emu_video/default_model); their folder is runs/shapes_world/keyframes/model.
set -euo pipefail
cd "$(dirname "$0")/.."

RUN_MINUTES=${RUN_MINUTES:-8}
read -r -a STAGES <<< "${STAGES:-autoencoder text_to_image video_64 video_128 interpolation}"
declare -A MINUTES=(
    [autoencoder]=${MINUTES_AUTOENCODER:-8}
    [text_to_image]=${MINUTES_TEXT_TO_IMAGE:-30}
    [video_64]=${MINUTES_VIDEO_64:-6}
    [video_128]=${MINUTES_VIDEO_128:-40}
    [interpolation]=${MINUTES_INTERPOLATION:-18}
    [extension]=${MINUTES_EXTENSION:-4}
    [keyframes]=${MINUTES_KEYFRAMES:-4}
)

trained_minutes() {  # training minutes in the stage's latest checkpoint (0 when none)
    python3 - "$1" <<'PY'
import json, sys
from pathlib import Path
root = Path(sys.argv[1]) / "checkpoints"
latest = root / "latest"
if not latest.is_file():
    print(0.0)
else:
    state = json.loads((root / latest.read_text().strip() / "state.json").read_text())
    print(state.get("elapsed_seconds", 0.0) / 60.0)
PY
}

for stage in "${STAGES[@]}"; do
    out=runs/shapes_world/$stage
    while true; do
        done_min=$(trained_minutes "$out")
        left=$(python3 -c "print(max(0.0, min($RUN_MINUTES, ${MINUTES[$stage]} - $done_min)))")
        if python3 -c "import sys; sys.exit(0 if $left < 0.5 else 1)"; then
            echo "$stage: trained $done_min of ${MINUTES[$stage]} minutes"
            break
        fi
        echo "$stage: $done_min of ${MINUTES[$stage]} minutes done, running $left more"
        emu-video train --config "configs/stages/shapes_world/$stage.toml" train.max_minutes="$left" \
            train.export_dtype=\"float16\" "$@"
        if grep -q '"finished"' "$out/status.json" 2>/dev/null; then
            break
        fi
    done
done
echo "model folder: runs/shapes_world/${STAGES[-1]}/model"
