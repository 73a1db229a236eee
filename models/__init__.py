"""Partitionable DNN zoo, layer profiler and Neurosurgeon-style latency predictor.

Pure package: imports neither Ryu nor Mininet.
"""

from models.partitioned import PartitionedModel, Segment
from models.zoo import (MODEL_NAMES, UnknownModelError, build_model, check_model, load_plugin,
                        model_names, register_model)

__all__ = ["MODEL_NAMES", "PartitionedModel", "Segment", "UnknownModelError", "build_model",
           "check_model", "load_plugin", "model_names", "register_model"]
