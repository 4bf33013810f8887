"""JSON Schemas (draft 2020-12) of the files users write: a hardware ``config``, a design ``space`` and
``tech`` overrides. ``cimjax schema NAME`` prints them, so editors can check and complete JSON or YAML files;
the same files are validated on load by the library (the schemas describe that validation, not replace it).
"""

from __future__ import annotations

FIELD_DESCRIPTIONS = {
    "c_v": "clusters, vertically (C = c_v x c_h clusters)",
    "c_h": "clusters, horizontally",
    "t_v_act": "active tiles per cluster, vertically (T_A = t_v_act x t_h_act tiles compute at a time)",
    "t_h_act": "active tiles per cluster, horizontally",
    "m": "tile sets per cluster (T_total = m x T_A tiles): while one set computes, the others prefetch weights",
    "pes_per_tile": "P^2: processing elements (16x16 SRAM CIM macros) per tile, a P x P array",
    "bus_inter_cluster": "bits per cycle of the bus between the global buffer and the clusters",
    "bus_inter_tile": "bits per cycle of the bus between a cluster's buffer and its tiles (one per cluster)",
    "bus_intra_tile": "bits per cycle of the bus between a tile and its PEs (one per tile)",
}
"""What each hardware field means (the README and ``cimjax schema config`` show this)."""

NAMES = ("config", "space", "tech")
_DRAFT = "https://json-schema.org/draft/2020-12/schema"


def schema(name: str) -> dict:
    """The JSON Schema of a ``config``, ``space`` or ``tech`` file."""
    from cimjax.hardware.config import FIELD_LIMITS, FIELDS, PAPER_SPACE

    if name == "config":
        fields = {
            f: {"type": "integer", "enum": list(PAPER_SPACE.values[f]), "description": FIELD_DESCRIPTIONS[f]}
            for f in FIELDS
        }
        body = {"type": "object", "properties": fields, "additionalProperties": False}
        return {
            "$schema": _DRAFT,
            "title": "cimjax hardware config",
            "description": "A design of the paper's space. Fields left out take the paper's alpha = 0.5 design; "
            "the fields may also sit under a 'config' key (as in `cimjax search --json` output).",
            "anyOf": [body, {"type": "object", "properties": {"config": body}, "required": ["config"]}],
        }
    if name == "space":
        fields = {
            f: {
                "type": "array",
                "items": {"type": "integer", "minimum": 1, "maximum": FIELD_LIMITS[f]},
                "minItems": 1,
                "description": f"allowed values of {f} ({FIELD_DESCRIPTIONS[f]}); the paper's: "
                f"{list(PAPER_SPACE.values[f])}",
            }
            for f in FIELDS
        }
        return {
            "$schema": _DRAFT,
            "title": "cimjax design space",
            "description": "Allowed values per hardware field; fields left out keep the paper's values.",
            "type": "object",
            "properties": fields,
            "additionalProperties": False,
        }
    if name == "tech":
        from cimjax.hardware.technology import PARAMETERS, SWITCH_VALUES, SWITCHES, allowed_range

        params = {
            n: {"type": "number", "minimum": allowed_range(n)[0], "maximum": allowed_range(n)[1], "default": p.value,
                "description": f"[{p.unit}] {p.source}"}
            for n, p in PARAMETERS.items()
        }  # fmt: skip
        params |= {
            n: {"enum": list(SWITCH_VALUES), "default": int(p.value), "description": f"switch (0/1): {p.source}"}
            for n, p in SWITCHES.items()
        }
        from cimjax.hardware.macro import EDGECIM_MACRO, GEOMETRY, MACRO_LIMITS

        geometry = {
            n: {"type": "integer", "minimum": 1, "maximum": MACRO_LIMITS[n], "default": getattr(EDGECIM_MACRO, n)}
            for n in GEOMETRY
        }
        params["macro"] = {
            "type": "object",
            "description": "the PE macro's name and geometry; fields left out keep the EdgeCIM 16x16 macro's",
            "properties": {"name": {"type": "string", "minLength": 1}} | geometry,
            "additionalProperties": False,
        }
        return {
            "$schema": _DRAFT,
            "title": "cimjax technology overrides",
            "description": "Technology and DRAM parameters to override; the rest keep their defaults (`cimjax tech`).",
            "type": "object",
            "properties": params,
            "additionalProperties": False,
        }
    raise ValueError(f"schema {name!r} is not known; allowed: {list(NAMES)}")
