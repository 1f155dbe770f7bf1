"""Several chips of one board: core placement across chips and the cost of spikes that cross them.

Model: the board's chips form a 2D grid (snake order, like cores on a chip); each chip is a
copy of the profile's core mesh, so a core has a board-wide mesh position. Cores are handed
out chip by chip (a layer may straddle two chips). A spike packet to a core on another chip
crosses ``chip distance`` chip-to-chip links (Manhattan distance on the chip grid); the rest
of its route is on-chip mesh hops. Inter-chip traffic is counted per packet and per link
crossed; each link crossed is the packet leaving a chip, costed at the profile's
``e_interchip`` (J), and delays it by the board's ``t_chip_hop`` (s). Input spikes enter at chip 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

from spikeflow.errors import ConfigError
from spikeflow.hardware.mapping import snake_position
from spikeflow.hardware.profiles import ChipProfile

NS = 1e-9


@dataclass(frozen=True)
class Board:
    """A multi-chip board: ``chips`` copies of the profile ``chip`` on a ``grid`` (rows, cols), with the time
    (s) of one spike packet crossing one chip-to-chip link (its energy is the profile's ``e_interchip``)."""
    name: str
    title: str
    chip: str  # profile name
    chips: int
    grid: Tuple[int, int]
    t_chip_hop: float  # seconds per link crossed
    notes: str = ""
    sources: Tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self):
        if self.grid[0] * self.grid[1] < self.chips:
            raise ConfigError(f"board {self.name}: grid {self.grid} holds fewer than {self.chips} chips")


# Inter-chip latency: no per-packet latency of Loihi's chip-to-chip links is published (Davies 2018 Table 2
# stops at on-chip tile hops). Estimate: an asynchronous off-chip handshake takes tens of ns, ~10x an on-chip
# hop (4.1-6.5 ns). The energy per link is the profile's e_interchip (itself an estimate, with its note).
NAHUKU = Board(
    name="nahuku", title="Intel Nahuku (32 Loihi)", chip="loihi",
    chips=32,  # Intel, "Pohoiki Beach" announcement (July 2019): Nahuku boards hold 8 to 32 Loihi chips
    grid=(4, 8),  # estimate: Loihi chips tile in 2D (Davies 2018); 4 x 8 layout assumed
    t_chip_hop=50 * NS,  # estimate (see above)
    sources=("Intel newsroom, Pohoiki Beach 64-chip system of Nahuku boards, July 2019",
             "Davies et al., Loihi, IEEE Micro 2018 (2D chip tiling)"),
)

KAPOHO_POINT = Board(
    name="kapoho-point", title="Intel Kapoho Point (8 Loihi 2)", chip="loihi2",
    chips=8,  # Intel, Kapoho Point announcement (Sept 2022): 8 Loihi 2 chips on one board
    grid=(2, 4),  # estimate
    t_chip_hop=50 * NS,  # estimate
    sources=("Intel newsroom, Kapoho Point 8-chip Loihi 2 board, Sept 2022",),
)

BOARDS: Dict[str, Board] = {b.chip: b for b in (NAHUKU, KAPOHO_POINT)}


def get_board(profile: ChipProfile, chips: int) -> Board | None:
    """The board that holds ``chips`` of ``profile`` (``None`` for one chip); ``ConfigError`` when none does."""
    if isinstance(chips, bool) or not isinstance(chips, (int, np.integer)) or chips < 1:
        raise ConfigError(f"hardware: chips must be an integer >= 1, got {chips!r}")
    if chips == 1:
        return None
    board = BOARDS.get(profile.name)
    if board is None or profile.shared_core:
        raise ConfigError(f"--chips {chips}: no multi-chip board is modelled for {profile.title}; "
                          f"boards: {', '.join(f'{b.title} (--chip {b.chip})' for b in BOARDS.values())}")
    if chips > board.chips:
        raise ConfigError(f"--chips {chips}: the {board.title} board holds {board.chips} chips")
    return board


@dataclass
class BoardUse:
    """How a compiled network uses a board: chips used, cores per chip, the chip of every core."""
    board: Board
    chips_allowed: int
    chip_of_core: np.ndarray  # [n_cores]
    chip_pos: np.ndarray  # [chips_used, 2] (row, col) on the board grid

    @property
    def chips_used(self) -> int:
        return int(self.chip_of_core.max()) + 1 if self.chip_of_core.size else 1

    @property
    def cores_per_chip(self) -> List[int]:
        return np.bincount(self.chip_of_core, minlength=self.chips_used).astype(int).tolist()


def board_place(n_cores: int, profile: ChipProfile, board: Board, chips_allowed: int):
    """Board-wide mesh positions ``[n_cores, 2]`` of cores filled chip by chip, and the ``BoardUse``."""
    chip_of = np.arange(n_cores, dtype=np.int64) // profile.cores
    used = int(chip_of.max()) + 1 if n_cores else 1
    chip_pos = np.array([snake_position(c, board.grid[1]) for c in range(used)], dtype=np.int64).reshape(-1, 2)
    rows, cols = profile.mesh
    pos = np.array([snake_position(c % profile.cores, cols) for c in range(n_cores)], dtype=np.int64).reshape(-1, 2)
    pos = pos + chip_pos[chip_of] * np.array([rows, cols])
    return pos, BoardUse(board=board, chips_allowed=chips_allowed, chip_of_core=chip_of, chip_pos=chip_pos)


def chip_distance(use: BoardUse, dest_cores: np.ndarray, src_core: np.ndarray) -> np.ndarray:
    """``[n_dest, n_src]`` chip-to-chip links between each source (core, or -1: input port on chip 0) and core."""
    src_chip = np.where(src_core >= 0, use.chip_of_core[np.maximum(src_core, 0)], 0)
    a = use.chip_pos[use.chip_of_core[dest_cores]]  # [n_dest, 2]
    b = use.chip_pos[src_chip]  # [n_src, 2]
    return np.abs(a[:, None, :] - b[None, :, :]).sum(axis=2)


def board_report(compiled, cost=None, steps: int | None = None) -> Dict:
    """Chips used, cores per chip and inter-chip routes (source neuron, core on another chip) of a compiled
    network; with the ``cost`` of an integer run of ``steps`` steps, its inter-chip messages (packets to
    another chip), chip-to-chip links crossed, their energy and latency per inference."""
    use = compiled.board
    if use is None:
        rep = {"board": None, "chips_used": 1, "cores_per_chip": [compiled.cores_used]}
    else:
        routes = sum(int(((lm.syn_per_core > 0) & (lm.chip_dist > 0)).sum()) for lm in compiled.mapping.layers)
        rep = {"board": use.board.name, "board_title": use.board.title, "chips_allowed": use.chips_allowed,
               "board_chips": use.board.chips, "chips_used": use.chips_used, "cores_per_chip": use.cores_per_chip,
               "chip_positions": use.chip_pos.tolist(), "interchip_routes": routes,
               "e_interchip_j": compiled.profile.e_interchip, "t_chip_hop_s": use.board.t_chip_hop,
               "chip_hop_figures": "estimate"}
    if cost is not None and use is not None:
        msgs = float(cost.counts.get("interchip_messages", 0.0))
        rep.update({"interchip_messages": msgs, "interchip_messages_per_step": msgs / steps if steps else None,
                    "chip_hops": float(cost.counts.get("chip_hops", 0.0)),
                    "interchip_energy_j": float(cost.breakdown_j.get("interchip", 0.0)),
                    "interchip_latency_s": float(cost.interchip_latency_s)})
    return rep


def board_line(rep: Dict) -> str:
    """One line of text for ``board_report``'s dict."""
    if rep["board"] is None:
        return "one chip"
    line = (f"{rep['board_title']} board: {rep['chips_used']} of {rep['chips_allowed']} chips allowed "
            f"({rep['board_chips']} on the board), cores per chip {rep['cores_per_chip']}, "
            f"{rep['interchip_routes']} routes cross chips")
    if "interchip_messages" in rep:
        per = rep["interchip_messages_per_step"]
        line += (f"; per inference {rep['interchip_messages']:.1f} inter-chip messages"
                 + (f" ({per:.2f} per step)" if per is not None else "")
                 + f", {rep['chip_hops']:.1f} chip links crossed: {rep['interchip_energy_j']:.3e} J, "
                 f"{rep['interchip_latency_s'] * 1e6:.3f} us")
    return line + f" (estimated {rep['e_interchip_j'] * 1e12:.0f} pJ, {rep['t_chip_hop_s'] * 1e9:.0f} ns per chip link)"
