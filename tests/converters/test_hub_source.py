"""A Hugging Face Hub model id as a source, resolved from a hub cache the test lays out as huggingface_hub does
(models--org--name/{blobs,refs,snapshots}), offline: nothing here reaches the network."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

import bmsdk
from bmsdk.converters.sources import hub
from bmsdk.converters.sources.loader import load_source

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def populate(cache: Path, repo_id: str, folder: Path, commit: str = COMMIT, skip: tuple[str, ...] = ()) -> Path:
    """Files of `folder` as the hub cache holds them: content-addressed blobs, a snapshot of links, refs/main."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for file in sorted(folder.iterdir()):
        if file.name in skip or not file.is_file():
            continue
        blob = repo / "blobs" / hashlib.sha256(file.read_bytes()).hexdigest()
        shutil.copyfile(file, blob)
        os.symlink(os.path.relpath(blob, snapshot), snapshot / file.name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


@pytest.fixture()
def offline_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def test_hub_id_resolves_from_the_cache_and_converts(offline_cache, bert_classifier_dir, tmp_path):
    populate(offline_cache, "acme/tiny-bert", bert_classifier_dir)
    result = bmsdk.convert("acme/tiny-bert", target="onnx", output=tmp_path / "out.bmsdk")
    assert result.passed
    manifest = json.loads((result.path / "bmsdk.json").read_text())
    assert manifest["name"] == "tiny-bert"
    assert manifest["source"]["hub"] == {"repo": "acme/tiny-bert", "revision": COMMIT, "requested": None}
    model = bmsdk.load(result.path)
    assert model.predict("the movie was great")["label"] in ("negative", "positive")


def test_a_pinned_revision_is_used_and_an_unknown_one_refused(offline_cache, bert_classifier_dir):
    populate(offline_cache, "acme/tiny-bert", bert_classifier_dir)
    source = load_source("acme/tiny-bert", revision=COMMIT)
    assert source.info["hub"]["revision"] == COMMIT
    with pytest.raises(bmsdk.SourceError, match="not in the Hugging Face cache"):
        load_source("acme/tiny-bert", revision="f" * 40)


def test_a_model_missing_from_the_offline_cache_says_how_to_get_it(offline_cache):
    with pytest.raises(bmsdk.SourceError, match="HF_HUB_OFFLINE"):
        load_source("acme/absent")


def test_pickled_weights_are_never_fetched(offline_cache, bert_classifier_dir, tmp_path):
    pickled = tmp_path / "pickled"
    shutil.copytree(bert_classifier_dir, pickled)
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")  # stands for a .bin-only repo
    populate(offline_cache, "acme/pickled", pickled)
    with pytest.raises(bmsdk.SourceError, match="never loads pickled"):
        load_source("acme/pickled")


def test_revision_is_refused_for_a_local_folder(bert_classifier_dir):
    with pytest.raises(bmsdk.SourceError, match="--revision applies to Hugging Face model ids"):
        load_source(bert_classifier_dir, revision=COMMIT)


@pytest.mark.parametrize("text", ["model.onnx", "a/b/c", "../x", "org/", "pkg.mod:fn"])
def test_what_is_not_a_hub_id(text):
    assert not hub.is_hub_id(text)
