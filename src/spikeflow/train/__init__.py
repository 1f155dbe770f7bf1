"""Training: losses, metrics, ``TrainStep``, ``Trainer`` (checkpoints, resume, DDP), model zoo, ANN->SNN, STDP."""

from spikeflow.train.checkpoint import read_checkpoint, read_model_file, write_model
from spikeflow.train.losses import LOSSES, classification_loss, logits, rate_regularizer
from spikeflow.train.metrics import SynOps, accuracy, record_spikes, synaptic_operations
from spikeflow.train.step import TrainStep
from spikeflow.train.trainer import TrainConfig, Trainer, evaluate, seed_all
from spikeflow.train.zoo import Classifier, build, conv, mlp, recurrent

__all__ = [
    "LOSSES", "Classifier", "SynOps", "TrainConfig", "TrainStep", "Trainer", "accuracy", "build", "classification_loss",
    "conv", "evaluate", "logits", "mlp", "rate_regularizer", "read_checkpoint", "read_model_file",
    "record_spikes", "recurrent", "seed_all", "synaptic_operations", "write_model",
]
