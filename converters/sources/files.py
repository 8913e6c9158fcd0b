"""Reading a checkpoint's JSON files (config, processor and tokenizer settings) with errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path

from bmsdk.errors import SourceError


def read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError, OSError) as e:  # ValueError covers JSONDecodeError and UnicodeDecodeError
        raise SourceError(
            f"{path} is not valid JSON ({str(e)[:160] or type(e).__name__})", f"repair or re-save the {what}"
        ) from None
    if not isinstance(data, dict):
        raise SourceError(f"{path} is not a JSON object", f"repair or re-save the {what}")
    return data
