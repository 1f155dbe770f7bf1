"""Sub-commands of the ``spikeflow`` CLI, one module each (see ``spikeflow.cli``)."""
