"""models/MODEL_CARD.md, the card README links to, describes the models this tree ships."""
import json
import re
from pathlib import Path

import pytest

MODELS = Path(__file__).resolve().parents[2] / "models"


def test_the_tracked_card_names_the_recipe_this_tree_builds():
    # The build writes a card into its cache entry (models/card.py); the tracked copy is what a reader of the repo
    # sees, and it once described a recipe four retrains old. models/dist is the build of this tree's recipe.
    build = MODELS / "dist" / "build.json"
    if not build.exists():
        pytest.skip("models not built (make setup)")
    recipe = json.loads(build.read_text())["recipe"]
    first = (MODELS / "MODEL_CARD.md").read_text(encoding="utf-8").splitlines()[0]
    assert re.search(r"recipe `([0-9a-f]{16})`", first).group(1) == recipe, \
        "copy models/dist/MODEL_CARD.md to models/MODEL_CARD.md after a retrain"
