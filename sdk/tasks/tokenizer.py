"""Reading an artifact's tokenizer.json (Hugging Face tokenizers format) into a fast tokenizer."""

from __future__ import annotations

from pathlib import Path

from bmsdk.errors import ManifestError


def load_tokenizer(path: Path):
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(str(path))
    except Exception as e:  # tokenizers raises a bare Exception for files it cannot read or parse
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise ManifestError(
            f"{path} is not a readable tokenizer.json ({reason})", "re-create the artifact with `bmsdk convert`"
        ) from None
