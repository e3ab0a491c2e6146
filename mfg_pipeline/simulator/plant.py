"""Machines of the plant: operating regimes, health degradation, failures, maintenance, sensors.

A machine's whole history is precomputed with numpy from ``(seed, machine index)``. Random
inputs are drawn per day (regimes, noise) or per maintenance cycle (failure mode, repair time),
each from its own keyed stream, so the history of day ``d`` never depends on how many days
follow it and writing one day alone gives the same bytes as writing the whole run.

Wear ``w`` grows from ~0 after a maintenance to 1 at failure (health = 1 - w). It rises faster
in harsher regimes and shows gradually in the signals: vibration level and its
sample-to-sample (high-frequency) content, bearing temperature and current ripple all grow
with ``w**2``; the cycle's failure mode (bearing, overheat, electrical) weights which signals
grow most.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from mfg_pipeline.simulator.config import SimulatorConfig, machine_id
from mfg_pipeline.simulator.seeds import stream

CHANNELS = (
    "vibration_rms",  # mm/s
    "bearing_temp",  # degC
    "motor_temp",  # degC
    "pressure",  # bar (hydraulic clamping)
    "spindle_speed",  # rpm
    "torque",  # N m
    "current",  # A
    "coolant_flow",  # L/min
)
FAILURE_TYPES = ("bearing", "overheat", "electrical")
FAILURE_TYPE_WEIGHTS = (0.5, 0.25, 0.25)

# Three operating regimes: spindle-speed / torque setpoints and how fast they wear the machine.
REGIME_SPEED = np.array([1200.0, 2000.0, 2800.0])
REGIME_TORQUE = np.array([72.0, 46.0, 34.0])
REGIME_HARSHNESS = np.array([0.75, 1.0, 1.45])
REGIME_HOURS = (2.0, 6.0)  # a regime lasts this many hours (uniform)

AMBIENT_MEAN = 22.0
FAILURE_DOWN_HOURS = (3.0, 10.0)
PM_DOWN_HOURS = (0.75, 2.0)
PM_AFTER_DAYS = (1.5, 5.0)  # a preventive maintenance is scheduled this long after a reset
PM_SKIPPED = 0.4  # probability that a cycle has no preventive maintenance at all


@dataclass(frozen=True)
class Event:
    sample: int  # global sample index (0 = start_day 00:00:00 UTC)
    event: str  # "failure" | "maintenance"
    failure_type: str  # failure mode; "" for a preventive maintenance


@dataclass(frozen=True)
class MachineHistory:
    machine_id: str
    wear: np.ndarray  # float, 0 (new) .. 1 (failure)
    running: np.ndarray  # bool; False while down for repair / maintenance
    regime: np.ndarray  # int 0..2
    mode: np.ndarray  # int index into FAILURE_TYPES of the current cycle
    signals: np.ndarray  # float (n_samples, len(CHANNELS))
    events: tuple[Event, ...]

    @property
    def health(self) -> np.ndarray:
        return 1.0 - self.wear

    def channel(self, name: str) -> np.ndarray:
        return self.signals[:, CHANNELS.index(name)]


@dataclass(frozen=True)
class _MachineParams:
    wear_rate: float  # wear per day at harshness 1
    initial_wear: float
    speed_offset: float
    temp_offset: float
    vib_base: float
    noise: float


def _params(config: SimulatorConfig, m: int) -> _MachineParams:
    r = stream(config.seed, "machine", m)
    return _MachineParams(
        wear_rate=float(r.uniform(0.25, 0.45)),
        initial_wear=float(r.uniform(0.3, 0.9)),
        speed_offset=float(r.uniform(-0.02, 0.02)),
        temp_offset=float(r.uniform(-3.0, 3.0)),
        vib_base=float(r.uniform(0.6, 1.0)),
        noise=float(r.uniform(0.8, 1.2)),
    )


def _regimes(config: SimulatorConfig, m: int) -> np.ndarray:
    """Regime per sample: each day starts a new regime, switching every 2-6 hours."""
    spd = config.samples_per_day
    out = np.empty(config.n_days * spd, dtype=np.int64)
    per_hour = 3600 / config.sample_period_s
    for d in range(config.n_days):
        r = stream(config.seed, "regime", m, d)
        lengths = np.maximum(1, np.round(r.uniform(*REGIME_HOURS, size=16) * per_hour)).astype(np.int64)
        choice = r.integers(0, 3, size=16)
        idx = np.repeat(np.arange(16), lengths)[:spd]
        if len(idx) < spd:  # cannot happen with 16 x >= 2 h, kept for odd sample periods
            idx = np.concatenate([idx, np.full(spd - len(idx), 15)])
        out[d * spd : (d + 1) * spd] = choice[idx]
    return out


def _daily_normals(config: SimulatorConfig, m: int, purpose: str, width: int) -> np.ndarray:
    spd = config.samples_per_day
    return np.concatenate(
        [stream(config.seed, purpose, m, d).standard_normal((spd, width)) for d in range(config.n_days)]
    )


def _cycles(config: SimulatorConfig, m: int, params: _MachineParams, regime: np.ndarray):
    """Wear, running mask, failure mode and events, one maintenance cycle at a time."""
    n = len(regime)
    dt_days = config.sample_period_s / 86400.0
    jitter = _daily_normals(config, m, "wear", 1)[:, 0]
    increments = params.wear_rate * dt_days * REGIME_HARSHNESS[regime] * np.exp(0.5 * jitter - 0.125)
    cumulative = np.cumsum(increments)
    per_hour = 3600 / config.sample_period_s

    wear = np.empty(n)
    running = np.ones(n, dtype=bool)
    mode = np.empty(n, dtype=np.int64)
    events: list[Event] = []
    start, wear0, cycle = 0, params.initial_wear, 0
    while start < n:
        r = stream(config.seed, "cycle", m, cycle)
        cycle_mode = int(r.choice(len(FAILURE_TYPES), p=FAILURE_TYPE_WEIGHTS))
        pm_after = int(r.uniform(*PM_AFTER_DAYS) * 86400 / config.sample_period_s)
        pm_skipped = r.random() < PM_SKIPPED
        fail_down = int(round(r.uniform(*FAILURE_DOWN_HOURS) * per_hour))
        pm_down = int(round(r.uniform(*PM_DOWN_HOURS) * per_hour))
        next_wear = float(r.uniform(0.0, 0.08))

        base = cumulative[start - 1] if start else 0.0
        fail_at = int(np.searchsorted(cumulative, base + (1.0 - wear0), side="left"))
        pm_at = n + 1 if pm_skipped else start + pm_after
        if pm_at < fail_at:
            stop, down, kind = pm_at, pm_down, "pm"
        else:
            stop, down, kind = fail_at, fail_down, "failure"
        stop_c = min(stop, n)
        wear[start:stop_c] = wear0 + cumulative[start:stop_c] - base
        mode[start:stop_c] = cycle_mode
        if stop >= n:
            break
        end = min(stop + down, n)
        wear[stop:end] = wear[stop - 1] if stop > start else wear0
        mode[stop:end] = cycle_mode
        running[stop:end] = False
        if kind == "failure":
            events.append(Event(stop, "failure", FAILURE_TYPES[cycle_mode]))
            repaired = FAILURE_TYPES[cycle_mode]
        else:
            repaired = ""
        if stop + down < n:
            events.append(Event(stop + down, "maintenance", repaired))
        start, wear0, cycle = stop + down, next_wear, cycle + 1
    return np.clip(wear, 0.0, 1.0), running, mode, tuple(events)


def _lag(target: np.ndarray, alpha: float) -> np.ndarray:
    """First-order thermal lag, started at equilibrium (causal, so prefix-stable)."""
    y, _ = lfilter([alpha], [1.0, alpha - 1.0], target, zi=[(1.0 - alpha) * target[0]])
    return y


def ideal_torque(spindle_speed):
    """Torque (N m) that gives the process's nominal cutting power (~9.5 kW) at this speed."""
    return 9500.0 * 60.0 / (2.0 * np.pi * np.maximum(spindle_speed, 1.0))


def expected_motor_temp(spindle_speed, torque, wear, overheat: float = 0.25):
    """Steady-state motor temperature (degC) of a running machine at mean ambient."""
    power_kw = spindle_speed * torque * 2.0 * np.pi / 60.0 / 1000.0
    return AMBIENT_MEAN + 20.0 + 2.2 * power_kw + (10.0 + 20.0 * overheat) * wear**2


def expected_vibration(spindle_speed, wear, bearing: float = 0.5, vib_base: float = 0.8):
    """Mean vibration RMS (mm/s) of a running machine."""
    return vib_base + 0.00015 * spindle_speed + (1.8 + 2.0 * bearing) * wear**2


def _signals(config, m, params, regime, wear, running, mode) -> np.ndarray:
    n = len(regime)
    z = _daily_normals(config, m, "sensor", len(CHANNELS)) * params.noise
    r = running.astype(float)
    w2 = wear**2
    bearing = (mode == 0).astype(float)
    overheat = (mode == 1).astype(float)
    electrical = (mode == 2).astype(float)
    alternating = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    hours = np.arange(n) * config.sample_period_s / 3600.0
    ambient = AMBIENT_MEAN + 3.0 * np.sin(2 * np.pi * (hours - 9.0) / 24.0) + params.temp_offset

    speed = r * (REGIME_SPEED[regime] * (1 + params.speed_offset) * (1 + 0.004 * z[:, 4]) - 40.0 * wear)
    torque = r * (REGIME_TORQUE[regime] * (1 + 0.03 * z[:, 5]) + 6.0 * w2)
    power_kw = speed * torque * 2 * np.pi / 60 / 1000

    ripple = 0.05 + (0.6 + 1.4 * electrical) * w2
    current = 0.6 + 0.05 * np.abs(z[:, 6]) + r * (
        power_kw * 1000.0 / (np.sqrt(3) * 400.0 * 0.85) * (1 + 0.08 * wear) + ripple * z[:, 6]
    )

    vib_level = expected_vibration(speed, wear, bearing, params.vib_base)
    hf = 0.35 * w2 * (1 + bearing)
    vib_run = vib_level * (1 + (0.03 + 0.25 * wear) * z[:, 0]) + hf * alternating * np.abs(z[:, 0] + 1.0)
    vibration = r * vib_run + (1 - r) * (0.05 + 0.02 * np.abs(z[:, 0]))

    bearing_target = ambient + r * (18.0 + 0.006 * speed + (22.0 + 15.0 * bearing) * w2)
    bearing_temp = _lag(bearing_target, config.sample_period_s / 1200.0) + 0.3 * z[:, 1]
    motor_target = ambient - AMBIENT_MEAN + r * expected_motor_temp(speed, torque, wear, overheat) + (1 - r) * AMBIENT_MEAN
    motor_temp = _lag(motor_target, min(1.0, config.sample_period_s / 1800.0)) + 0.4 * z[:, 2]

    pressure = r * (6.2 + 0.08 * z[:, 3] - (0.4 + 1.0 * overheat) * wear**1.5) + (1 - r) * (0.3 + 0.02 * np.abs(z[:, 3]))
    coolant = r * (14.0 * (np.maximum(speed, 1.0) / 2000.0) ** 0.3 - (1.0 + 3.0 * overheat) * w2 + 0.3 * z[:, 7])

    out = np.stack([vibration, bearing_temp, motor_temp, pressure, speed, torque, current, coolant], axis=1)
    return np.maximum(out, 0.0)


@functools.lru_cache(maxsize=128)
def machine_history(config: SimulatorConfig, m: int) -> MachineHistory:
    """The full, deterministic history of machine ``m`` (0-based) over ``config.n_days``."""
    if not 0 <= m < config.n_machines:
        raise IndexError(f"machine index {m} outside 0..{config.n_machines - 1}")
    params = _params(config, m)
    regime = _regimes(config, m)
    wear, running, mode, events = _cycles(config, m, params, regime)
    signals = _signals(config, m, params, regime, wear, running, mode)
    for array in (wear, running, regime, mode, signals):
        array.setflags(write=False)
    return MachineHistory(machine_id(m), wear, running, regime, mode, signals, events)
