"""A Hugging Face Hub model id (`org/name`) as a source: resolved through `huggingface_hub` and its cache.

Only what a checkpoint folder needs is fetched (configs, safetensors weights, tokenizer files); pickled weights
(`*.bin`, `*.pt`) are never downloaded or loaded. `HF_HUB_OFFLINE=1` is honoured (the cache only), and without a
network the cache answers for a revision it holds. A pinned `--revision` (a commit hash, branch or tag) is passed
through and the commit that was used goes into the artifact.
"""

from __future__ import annotations

import re
from pathlib import Path

from bmsdk.errors import SourceError

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")
FILES = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "merges.txt", "vocab.*"]


def is_hub_id(text: str) -> bool:
    """`org/name` that is not a local path (checked by the caller) and not a relative file name."""
    return bool(HUB_ID.match(text)) and not text.endswith((".onnx", ".pt2", ".pt", ".pth")) and ".." not in text


def resolve(repo_id: str, revision: str | None = None) -> tuple[Path, dict]:
    """The snapshot folder of `repo_id` at `revision` (fetched into the hub cache if needed) and what to record."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub import errors as hub

    offline = bool(constants.HF_HUB_OFFLINE)
    where = f"{repo_id}" + (f" at revision {revision}" if revision else "")
    try:
        folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=FILES, local_files_only=offline))
    except hub.RepositoryNotFoundError:
        raise SourceError(
            f"the Hugging Face Hub has no model {repo_id} (or it is private)",
            "check the id, or log in with `hf auth login` for a private model",
        ) from None
    except hub.RevisionNotFoundError:
        raise SourceError(f"{repo_id} has no revision {revision}", "pass an existing --revision") from None
    except hub.LocalEntryNotFoundError:
        hint = "unset HF_HUB_OFFLINE to download it" if offline else "connect to the network once to download it"
        raise SourceError(
            f"{where} is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and cannot be downloaded here",
            f"{hint}, or pass a local checkpoint folder",
        ) from None
    except (hub.HfHubHTTPError, hub.HFValidationError, OSError, ValueError) as e:
        raise SourceError(
            f"could not fetch {where} from the Hugging Face Hub: {str(e).splitlines()[0][:200]}",
            "check the id and revision, or pass a local checkpoint folder",
        ) from None
    if not (folder / "config.json").is_file():
        raise SourceError(f"{where} has no config.json", "pass a transformers model id (saved with save_pretrained)")
    if not any(folder.glob("*.safetensors")):
        raise SourceError(
            f"{where} has no safetensors weights; bmsdk never loads pickled (.bin) weights from the hub",
            "pick a revision with model.safetensors, or convert the weights yourself and pass a local folder",
        )
    return folder, {"hub": {"repo": repo_id, "revision": folder.name, "requested": revision}}
