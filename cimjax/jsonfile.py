"""Reading user-supplied JSON or YAML files with errors that name the file and what it was for."""

from __future__ import annotations

import json
from pathlib import Path

YAML_SUFFIXES = (".yaml", ".yml")


def read_json(path: str | Path, what: str):
    """Parsed contents of ``path`` (YAML when it ends in .yaml/.yml, else JSON); ValueError naming the
    ``what`` file if it cannot be read or parsed."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ValueError(f"cannot read {what} file {path}: {err.strerror}") from None
    if Path(path).suffix.lower() in YAML_SUFFIXES:
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ValueError(f"{what} file {path} is not valid YAML: {' '.join(str(err).split())}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{what} file {path} is not valid JSON: {err}") from None
