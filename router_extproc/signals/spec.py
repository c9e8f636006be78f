"""The ONNX interface of the signal model: the graph's inputs and outputs, and what labels.json carries.

The runtime (engine.py) reads the model through these names, and the build (models/recipe.py) exports them: both
import this module. models/build.py hashes ALL_OUTPUTS and RECIPE_RUNTIME_FILES into the model's recipe, so a change
to the interface retrains the model, while the runtime-only parts below (ModelThresholds) do not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

INPUTS = ("input_ids", "attention_mask")
# the outputs every signal pass reads, in the order engine.py unpacks them
SIGNAL_OUTPUTS = ("embedding", "category_logits", "jailbreak_logit", "complexity_logit", "pii_logits")
SPAN_OUTPUT = "jailbreak_span_logit"   # optional: a model built without the span detector lacks it
PAIR_OUTPUT = "seq_feat"               # optional: the cache verifier's pair features
ALL_OUTPUTS = (*SIGNAL_OUTPUTS, PAIR_OUTPUT, SPAN_OUTPUT)   # what the build exports
# runtime files whose rules the build trains or calibrates through (part of the model's recipe hash)
RECIPE_RUNTIME_FILES = ("router_extproc/signals/windows.py",)
# the cache verifier's recipe is keyed by the training code it reads: models/build_verifier.py training_source()
DEFAULT_THRESHOLD = 0.5                # a labels.json without a calibrated threshold


@dataclass(frozen=True, slots=True)
class ModelThresholds:
    """The operating points chosen on the model's calibration split, shipped in labels.json."""

    jailbreak: float = DEFAULT_THRESHOLD
    pii: float = DEFAULT_THRESHOLD
    jailbreak_span: float | None = None   # None: the span detector is off

    @classmethod
    def from_labels(cls, labels: Mapping[str, Any] | None) -> ModelThresholds:
        t = (labels or {}).get("thresholds", {})
        span = t.get("jailbreak_span")
        return cls(jailbreak=float(t.get("jailbreak", DEFAULT_THRESHOLD)), pii=float(t.get("pii", DEFAULT_THRESHOLD)),
                   jailbreak_span=None if span is None else float(span))
