"""Technician maintenance-log lines: templated, abbreviated, misspelt, sometimes ambiguous."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mfg_pipeline.simulator.config import SimulatorConfig
from mfg_pipeline.simulator.seeds import stream

TEXT_CATEGORIES = ("electrical", "hydraulic", "mechanical", "lubrication", "sensor_fault", "pneumatic")

# Which log a failure (and its repair) produces, by failure mode.
FAILURE_LOG_CATEGORIES = {
    "bearing": (("mechanical", 0.6), ("lubrication", 0.4)),
    "overheat": (("hydraulic", 0.5), ("lubrication", 0.25), ("mechanical", 0.25)),
    "electrical": (("electrical", 1.0),),
    "": (("lubrication", 0.5), ("mechanical", 0.3), ("pneumatic", 0.2)),  # preventive maintenance
}

_VOCAB: dict[str, dict[str, list[str]]] = {
    "electrical": {
        "part": ["motor contactor", "main breaker", "servo drive", "power supply", "motor cable", "fuse F3",
                 "terminal block", "VFD", "spindle drive", "control relay", "encoder cable", "ground strap"],
        "symptom": ["tripped on overcurrent", "burnt smell at cabinet", "intermittent power loss",
                    "drive fault code E{n}", "loose wire found", "arcing marks on terminals",
                    "phase imbalance on motor", "current ripple high", "insulation resistance low",
                    "relay chattering", "blown fuse"],
        "action": ["replaced", "reseated connectors on", "tightened terminals of", "reset", "rewired",
                   "megger tested", "swapped", "checked voltage at"],
    },
    "hydraulic": {
        "part": ["hydraulic pump", "clamp cylinder", "pressure relief valve", "hydraulic hose", "accumulator",
                 "coolant pump", "oil cooler", "solenoid valve", "return filter", "manifold seal"],
        "symptom": ["leaking at fitting", "pressure dropping under load", "oil temperature high",
                    "pump cavitation noise", "slow clamp response", "coolant flow low",
                    "hose weeping", "filter bypass indicator on", "pressure fluctuating"],
        "action": ["replaced", "bled", "tightened fitting on", "flushed", "adjusted pressure on",
                   "changed filter on", "resealed", "topped up oil for"],
    },
    "mechanical": {
        "part": ["spindle bearing", "ball screw", "gearbox", "coupling", "belt", "linear guide",
                 "tool holder", "spindle housing", "drive pulley", "bearing #{n}", "way covers"],
        "symptom": ["excessive vibration", "grinding noise", "backlash found", "play in shaft",
                    "bearing noise at high rpm", "belt slipping", "misalignment noted", "chatter marks on parts",
                    "worn teeth", "knocking sound", "cracked mount"],
        "action": ["replaced", "realigned", "tightened bolts on", "adjusted tension of", "rebuilt",
                   "inspected", "shimmed", "balanced"],
    },
    "lubrication": {
        "part": ["spindle bearing", "way lube system", "grease nipple", "oil reservoir", "lube pump",
                 "central lube line", "gearbox oil", "chain", "guide rails", "lube distributor"],
        "symptom": ["low oil level", "dry running", "grease contaminated", "lube pump not cycling",
                    "oil discoloured", "no lube reaching rails", "metal particles in oil",
                    "bearing running hot, dry", "lube alarm active"],
        "action": ["greased", "topped up", "changed oil in", "cleaned and relubricated", "purged",
                   "replaced lube line to", "refilled", "lubricated"],
    },
    "sensor_fault": {
        "part": ["temperature sensor", "vibration sensor", "pressure transducer", "flow meter",
                 "proximity switch", "thermocouple", "accelerometer", "encoder", "level switch", "RTD"],
        "symptom": ["reading stuck", "signal dropout", "value implausible", "reading drifting",
                    "noisy signal", "reads zero", "spikes in readings", "cable damaged at sensor",
                    "calibration off by {n}%", "false alarm"],
        "action": ["recalibrated", "replaced", "reconnected", "cleaned", "zeroed", "checked wiring of",
                   "re-mounted", "swapped"],
    },
    "pneumatic": {
        "part": ["air cylinder", "pneumatic valve", "air line", "regulator", "FRL unit", "air blow nozzle",
                 "door cylinder", "quick coupling", "air dryer", "muffler"],
        "symptom": ["air leak hissing", "low air pressure", "cylinder sticking", "valve not shifting",
                    "water in air line", "slow door actuation", "regulator drifting"],
        "action": ["replaced", "drained", "tightened", "adjusted", "cleaned", "resealed", "swapped"],
    },
}

_TEMPLATES = [
    "{action} {part} - {symptom}",
    "{symptom} on {part}, {action} {part2}",
    "{machine}: {symptom}. {action} {part}",
    "found {part} {symptom}; {action} it",
    "operator reported {symptom}. checked {part}, {action} {part}",
    "{action} {part} after {symptom}",
    "{part}: {symptom}",
    "{symptom}. {action} {part}. {filler}",
    "{filler}, {symptom} at {part}",
    "{machine} {part} {symptom} - {action} - {filler}",
    "wo #{wo}: {action} {part} ({symptom})",
    "{action} {part}",
]
_FILLERS = [
    "ok now", "running ok", "will monitor", "see prev shift notes", "no further action", "per PM schedule",
    "parts ordered", "shift B", "night shift", "back in production", "told supervisor", "recheck next week",
    "approx 30 min downtime", "waiting on parts", "test run fine", "as per manual", "cleaned area",
    "machine released", "pls check again tomorrow",
]
_ABBREVIATIONS = {
    "bearing": "brg", "replaced": "replcd", "checked": "chkd", "temperature": "temp", "hydraulic": "hyd",
    "lubrication": "lube", "lubricated": "lubed", "pressure": "press", "motor": "mtr", "approx": "approx",
    "inspected": "insp", "maintenance": "maint", "vibration": "vib", "adjusted": "adj", "operator": "op",
    "excessive": "excess", "connectors": "conn", "cylinder": "cyl", "sensor": "snsr", "reported": "rep'd",
    "tightened": "tight'd", "previous": "prev", "supervisor": "supv", "production": "prod",
    "replace": "repl", "pneumatic": "pneu", "electrical": "elec", "machine": "mach", "with": "w/",
}


@dataclass(frozen=True)
class LogRecord:
    second: int  # seconds since the day's 00:00:00 UTC
    machine_id: str
    text: str
    label: str  # the true category (written only when labeled)
    labeled: bool


def _fill(r: np.random.Generator, template: str, vocab: dict[str, list[str]], other, machine: str) -> str:
    def pick(key):
        return str(r.choice(vocab[key])).replace("{n}", str(int(r.integers(1, 9))))

    part = pick("part")
    symptom = pick("symptom")
    if other is not None:  # ambiguous line: a symptom or part borrowed from another category
        if r.random() < 0.5:
            symptom = str(r.choice(other["symptom"])).replace("{n}", str(int(r.integers(1, 9))))
        else:
            part = str(r.choice(other["part"])).replace("{n}", str(int(r.integers(1, 9))))
    return template.format(
        action=pick("action"),
        part=part,
        part2=pick("part"),
        symptom=symptom,
        machine=machine if r.random() < 0.7 else f"mach {machine[1:]}",
        filler=str(r.choice(_FILLERS)),
        wo=int(r.integers(1000, 99999)),
    )


def _typo(r: np.random.Generator, word: str) -> str:
    if len(word) < 4 or not word.isalpha():
        return word
    i = int(r.integers(1, len(word) - 1))
    kind = r.integers(0, 3)
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 1:
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


def _noisy(r: np.random.Generator, text: str) -> str:
    words = text.split(" ")
    u_abbrev, u_typo = r.random(len(words)), r.random(len(words))
    out = []
    for word, ua, ut in zip(words, u_abbrev, u_typo):
        core = word.rstrip(".,;:")
        tail = word[len(core) :]
        if ua < 0.45 and core.lower() in _ABBREVIATIONS:
            core = _ABBREVIATIONS[core.lower()]
        if ut < 0.05:
            core = _typo(r, core)
        out.append(core + tail)
    text = " ".join(out)
    case = r.random()
    if case < 0.55:
        return text.lower()
    if case < 0.7:
        return text.upper()
    return text[:1].upper() + text[1:]


def log_line(r: np.random.Generator, category: str, machine: str, ambiguous_rate: float = 0.12) -> str:
    """One technician log line about ``category``."""
    vocab = _VOCAB[category]
    other = None
    if r.random() < ambiguous_rate:
        others = [c for c in TEXT_CATEGORIES if c != category]
        other = _VOCAB[str(r.choice(others))]
    template = str(r.choice(_TEMPLATES))
    return _noisy(r, _fill(r, template, vocab, other, machine))


def _category_for(r: np.random.Generator, failure_type: str) -> str:
    options = FAILURE_LOG_CATEGORIES[failure_type]
    names = [c for c, _ in options]
    return str(r.choice(names, p=[p for _, p in options]))


def day_logs(
    config: SimulatorConfig,
    m: int,
    day_index: int,
    machine: str,
    events: list[tuple[int, str, str]] = (),
) -> list[LogRecord]:
    """Logs of one machine on one day: routine ones plus one per failure / maintenance event.

    ``events`` are ``(second_of_day, event, failure_type)`` of this machine on this day.
    """
    r = stream(config.seed, "text", m, day_index)
    n = config.logs_per_machine_day
    seconds = list(r.integers(0, 86400, size=n))
    categories = [str(c) for c in r.choice(TEXT_CATEGORIES, size=n)]
    for second, _event, failure_type in events:
        delay = int(r.integers(5, 40)) * 60  # the technician writes it up a bit later
        seconds.append(min(second + delay, 86399))
        categories.append(_category_for(r, failure_type))
    labeled = r.random(len(seconds)) < config.text_label_fraction
    records = [
        LogRecord(int(s), machine, log_line(r, c, machine), c, bool(lab))
        for s, c, lab in zip(seconds, categories, labeled)
    ]
    return sorted(records, key=lambda x: x.second)
