"""Build-time only: fetch the pinned Magpie checkpoint and codec into one directory.

    python fetch_weights.py DEST MAGPIE_REPO MAGPIE_REVISION CODEC_REPO CODEC_REVISION

Writes DEST/magpie_tts_multilingual_357m.nemo, DEST/nemo-nano-codec-22khz-1.89kbps-21.5fps.nemo,
DEST/REVISION (the resolved commit of the checkpoint) and DEST/speakers.json (the checkpoint's
speaker indices, which the service checks against the model's baked speakers at start).
"""

import json
import shutil
import sys
from pathlib import Path

from huggingface_hub import HfApi, snapshot_download

CHECKPOINT = "magpie_tts_multilingual_357m.nemo"
CODEC = "nemo-nano-codec-22khz-1.89kbps-21.5fps.nemo"
# Speaker order of the baked context embeddings in the multilingual 357M checkpoints (model card,
# and every known caller of do_tts). A new pin must be checked against its model card before use.
SPEAKERS = [("John", "male"), ("Sofia", "female"), ("Aria", "female"), ("Jason", "male"), ("Leo", "male")]


def fetch(repo: str, revision: str, dest: Path, name: str) -> str:
    commit = HfApi().model_info(repo, revision=revision).sha or revision
    snapshot = Path(snapshot_download(repo, revision=commit, allow_patterns=["*.nemo"]))
    found = sorted(snapshot.rglob("*.nemo"))
    if len(found) != 1:
        raise SystemExit(f"{repo}@{commit}: expected one .nemo file, found {[p.name for p in found]}")
    shutil.copyfile(found[0], dest / name)
    return commit


def main() -> None:
    dest, magpie_repo, magpie_revision, codec_repo, codec_revision = sys.argv[1:6]
    target = Path(dest)
    target.mkdir(parents=True, exist_ok=True)
    commit = fetch(magpie_repo, magpie_revision, target, CHECKPOINT)
    codec_commit = fetch(codec_repo, codec_revision, target, CODEC)
    (target / "REVISION").write_text(commit + "\n", encoding="utf-8")
    speakers = [{"index": i, "name": name, "gender": gender} for i, (name, gender) in enumerate(SPEAKERS)]
    manifest = {"checkpoint": f"{magpie_repo}@{commit}", "codec": f"{codec_repo}@{codec_commit}", "speakers": speakers}
    (target / "speakers.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
