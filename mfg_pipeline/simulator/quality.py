"""Product batches and their quality: pass/fail follows the process conditions of the batch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mfg_pipeline.simulator.config import SimulatorConfig
from mfg_pipeline.simulator.plant import (
    CHANNELS,
    expected_motor_temp,
    expected_vibration,
    ideal_torque,
    machine_history,
)
from mfg_pipeline.simulator.seeds import stream

QUALITY_INTERCEPT = 3.6


def ideal_motor_temp(spindle_speed):
    """Motor temperature (degC) at which the process runs best; higher speeds like it warmer."""
    return 54.0 + 0.003 * np.asarray(spindle_speed, dtype=float)


def quality_pass_probability(
    health,
    spindle_speed,
    torque,
    motor_temp=None,
    vibration_rms=None,
):
    """Probability that a batch passes inspection, given the machine state and its settings.

    Answers "what quality would these settings give this machine now?":

    - ``health``: 1 = freshly maintained, 0 = about to fail (``1 - wear``).
    - ``spindle_speed`` (rpm) and ``torque`` (N m): the process settings.
    - ``motor_temp`` (degC) and ``vibration_rms`` (mm/s): measured conditions; when left
      out they are the steady-state values the simulator's sensor model expects for this
      health and these settings.

    The log-odds fall with the squared deviation of the motor temperature from an ideal that
    rises with spindle speed, the squared relative deviation of the torque from the torque of
    nominal cutting power at that speed, and vibration beyond ~2 mm/s (worn bearings chatter).
    Scalars give a float; numpy arrays broadcast and give an array.
    """
    health = np.clip(np.asarray(health, dtype=float), 0.0, 1.0)
    speed = np.asarray(spindle_speed, dtype=float)
    torque = np.asarray(torque, dtype=float)
    wear = 1.0 - health
    if motor_temp is None:
        motor_temp = expected_motor_temp(speed, torque, wear)
    if vibration_rms is None:
        vibration_rms = expected_vibration(speed, wear)
    temp_dev = (np.asarray(motor_temp, dtype=float) - ideal_motor_temp(speed)) / 6.0
    load_dev = torque / ideal_torque(speed) - 1.0
    vib_excess = np.maximum(np.asarray(vibration_rms, dtype=float) - 2.0, 0.0)
    logit = QUALITY_INTERCEPT - 0.35 * temp_dev**2 - 8.0 * load_dev**2 - 1.2 * vib_excess
    p = 1.0 / (1.0 + np.exp(-logit))
    return float(p) if np.ndim(p) == 0 else p


@dataclass(frozen=True)
class Batch:
    batch_id: str
    machine_id: str
    start_sample: int
    end_sample: int  # exclusive; the batch ends (and is inspected) at this sample's time
    pass_probability: float
    passed: int
    inspected: bool


def day_batches(config: SimulatorConfig, m: int, day_index: int, day: str) -> list[Batch]:
    """Batches machine ``m`` finished on one day (none while it is mostly down)."""
    history = machine_history(config, m)
    spd = config.samples_per_day
    n = config.batches_per_machine_day
    if n <= 0:
        return []
    bounds = day_index * spd + np.linspace(0, spd, n + 1).round().astype(int)
    r = stream(config.seed, "quality", m, day_index)
    noise = r.normal(0.0, 0.4, size=n)  # raw-material and operator variation (log-odds)
    u_pass = r.random(n)
    u_inspect = r.random(n)
    sig = history.signals
    speed_i, torque_i = CHANNELS.index("spindle_speed"), CHANNELS.index("torque")
    temp_i, vib_i = CHANNELS.index("motor_temp"), CHANNELS.index("vibration_rms")
    out = []
    for j in range(n):
        lo, hi = int(bounds[j]), int(bounds[j + 1])
        run = history.running[lo:hi]
        if hi <= lo or run.mean() < 0.5:
            continue
        window = sig[lo:hi][run]
        p = quality_pass_probability(
            health=float(history.health[lo:hi][run].mean()),
            spindle_speed=float(window[:, speed_i].mean()),
            torque=float(window[:, torque_i].mean()),
            motor_temp=float(window[:, temp_i].mean()),
            vibration_rms=float(window[:, vib_i].mean()),
        )
        p_noisy = 1.0 / (1.0 + np.exp(-(np.log(p / (1.0 - p)) + noise[j])))
        out.append(
            Batch(
                batch_id=f"{history.machine_id}-{day.replace('-', '')}-{j + 1:03d}",
                machine_id=history.machine_id,
                start_sample=lo,
                end_sample=hi,
                pass_probability=p,
                passed=int(u_pass[j] < p_noisy),
                inspected=bool(u_inspect[j] < config.quality_label_fraction),
            )
        )
    return out
