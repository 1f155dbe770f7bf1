"""spikeflow: build, train and run spiking neural networks, from event data to chip estimates."""

__version__ = "0.1.0"

from spikeflow.errors import SpikeflowError  # noqa: E402

__all__ = ["SpikeflowError", "__version__"]
