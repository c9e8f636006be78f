"""Request signals from one ONNX pass: embedding, domain category, complexity, jailbreak score, PII."""
from .batcher import BatcherClosed, MicroBatcher
from .engine import SignalEngine
from .types import PIIEntity, Signals

__all__ = ["BatcherClosed", "MicroBatcher", "PIIEntity", "SignalEngine", "Signals"]
