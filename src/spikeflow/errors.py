"""One exception family for spikeflow.

Every error names what was wrong (file, field, layer, parameter or limit) and
what would be valid. The CLI turns any ``SpikeflowError`` into one line and
exit code 2.
"""

from __future__ import annotations


class SpikeflowError(Exception):
    """Base class of every error spikeflow raises on purpose."""


class ParameterError(SpikeflowError, ValueError):
    """A model or function parameter is outside its valid range."""


class ShapeError(SpikeflowError, ValueError):
    """A tensor has the wrong rank or a shape that does not match."""


class InputError(SpikeflowError, ValueError):
    """Input data holds values that cannot be used (NaN, inf, wrong dtype)."""


class DataFormatError(SpikeflowError, ValueError):
    """A file is truncated, corrupt, oversized or not in the expected format."""


class NIRError(SpikeflowError, ValueError):
    """A NIR graph cannot be exported, read or run."""


class HardwareLimitError(SpikeflowError, ValueError):
    """A network does not fit a chip profile's limits."""


class CheckpointError(SpikeflowError, ValueError):
    """A checkpoint or model file is missing, corrupt or incompatible."""


class ConfigError(SpikeflowError, ValueError):
    """A configuration (simulation, training, CLI option) is invalid."""
