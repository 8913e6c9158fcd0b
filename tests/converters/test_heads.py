"""Which task a checkpoint is read as, and refusals where its weights do not fit that task's head; the source
rewrites and checks the zoo needed (whole-input pools, models that refuse their inputs, RoBERTa positions)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TEXT_LABELS, _bert_config

import bmsdk
from bmsdk.cli import main as cli
from bmsdk.compare import INT8, compare_outputs
from bmsdk.converters.sources.loader import load_source
from bmsdk.converters.sources.rewrites import whole_input_pools
from bmsdk.tasks import detect_task


def _save(model, tokenizer_dir, out):
    from transformers import BertTokenizerFast

    model.eval().save_pretrained(out)
    BertTokenizerFast.from_pretrained(str(tokenizer_dir)).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def ner_dir(tmp_path_factory, bert_classifier_dir):
    import torch
    from transformers import BertForTokenClassification

    torch.manual_seed(0)
    model = BertForTokenClassification(_bert_config(num_labels=3))
    return _save(model, bert_classifier_dir, tmp_path_factory.mktemp("ner") / "bert-ner")


@pytest.fixture(scope="module")
def choice_dir(tmp_path_factory, bert_classifier_dir):
    import torch
    from transformers import BertForMultipleChoice

    torch.manual_seed(0)
    model = BertForMultipleChoice(_bert_config())
    return _save(model, bert_classifier_dir, tmp_path_factory.mktemp("choice") / "bert-choice")


def test_a_head_without_a_task_is_named_not_guessed(choice_dir):
    with pytest.raises(bmsdk.SourceError, match="MultipleChoice head, which no bmsdk task supports") as e:
        load_source(choice_dir)
    assert "text-classification" not in e.value.fix.split("(")[0]  # no hint towards the wrong head


def test_a_checkpoint_forced_onto_another_head_is_refused(ner_dir):
    # a token classifier has no pooler: as a sequence classifier its pooler would be random
    with pytest.raises(bmsdk.SourceError, match="has no weights for .* text-classification model"):
        load_source(ner_dir, task="text-classification")


def test_weights_of_another_head_are_refused(tmp_path, bert_classifier_dir):
    import torch
    from transformers import BertForSequenceClassification

    torch.manual_seed(0)
    config = _bert_config(num_labels=2, id2label=dict(enumerate(TEXT_LABELS)))
    folder = _save(BertForSequenceClassification(config), bert_classifier_dir, tmp_path / "extra")
    from safetensors.torch import load_file, save_file

    weights = load_file(str(folder / "model.safetensors"))
    weights["cls.predictions.bias"] = torch.zeros(8)  # a masked-LM head's weight the classifier does not use
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(bmsdk.SourceError, match="does not use"):
        load_source(folder)


def test_feature_extraction_only_for_a_base_model(bert_encoder_dir):
    assert load_source(bert_encoder_dir).task == "feature-extraction"
    assert detect_task(["BertModel"]).name == "feature-extraction"
    assert detect_task(["GPT2LMHeadModel"]).name == "text-generation"  # its LM head is kept, not dropped
    for name in ("BertForPreTraining", "BertForMaskedLM", "ElectraForPreTrainingModel"):
        assert detect_task([name]) is None, name


# --- small heads ------------------------------------------------------------------------------------------------


def test_two_class_logits_near_the_boundary_are_judged_over_the_batch():
    rng = np.random.default_rng(0)
    ref = rng.normal(0, 3, (8, 2)).astype(np.float32)
    ref[0] = [0.51, 0.50]  # nearly tied: its own cosine is not meaningful
    got = ref + rng.normal(0, 0.02, ref.shape).astype(np.float32)
    got[0] = [0.50, 0.515]  # flips, within the error band
    check = compare_outputs({"logits": ref}, {"logits": got}, INT8)
    assert check.passed, check.reason
    clear = got.copy()
    clear[1] = ref[1][::-1]  # a clearly decided sample answered the other way
    assert not compare_outputs({"logits": ref}, {"logits": clear}, INT8).passed


def test_a_large_head_is_still_judged_per_sample():
    rng = np.random.default_rng(1)
    ref = rng.normal(0, 1, (4, 100))
    got = ref.copy()
    got[2] = rng.normal(0, 1, 100)  # one sample's embedding is wrong
    assert not compare_outputs({"logits": ref}, {"logits": got}, INT8).passed


# --- source rewrites and checks -----------------------------------------------------------------------------


def test_a_pool_over_the_whole_input_becomes_a_global_average():
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)
            self.pool = torch.nn.AvgPool2d(640, ceil_mode=True)  # transformers' EfficientNet pooler
            self.local = torch.nn.AvgPool2d(2)  # an ordinary pool is left alone

        def forward(self, x):
            return self.pool(self.local(self.conv(x))).flatten(1)

    net = Net().eval()
    x = np.random.default_rng(0).normal(size=(2, 3, 14, 14)).astype(np.float32)
    before = net(torch.from_numpy(x)).detach().numpy()
    assert whole_input_pools(net, lambda: net(torch.from_numpy(x))) == ["pool"]
    assert isinstance(net.pool, torch.nn.AdaptiveAvgPool2d) and isinstance(net.local, torch.nn.AvgPool2d)
    np.testing.assert_allclose(net(torch.from_numpy(x)).detach().numpy(), before, rtol=1e-5, atol=1e-6)


def test_a_model_that_refuses_its_inputs_is_a_source_error(vit_dir, tmp_path, capsys):
    import shutil

    folder = tmp_path / "vit-40"  # its processor makes 40x40 images; the model was built for 32x32
    shutil.copytree(vit_dir, folder)
    config = json.loads((folder / "preprocessor_config.json").read_text())
    config["size"] = {"height": 40, "width": 40}
    (folder / "preprocessor_config.json").write_text(json.dumps(config))
    out = tmp_path / "a.bmsdk"
    code = cli(["convert", str(folder), "-o", str(out), "-q"])
    err = capsys.readouterr().err
    assert code != 0 and "the source model fails on inputs of pixel_values [1, 3, 40, 40]" in err, err
    assert "Traceback" not in err and not out.exists()


def test_roberta_positions_start_after_the_padding_id(tmp_path, bert_classifier_dir):
    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification

    torch.manual_seed(0)
    config = RobertaConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=40, pad_token_id=1, type_vocab_size=1, num_labels=2,
    )  # fmt: skip
    folder = _save(RobertaForSequenceClassification(config), bert_classifier_dir, tmp_path / "roberta")
    source = load_source(folder, max_length=512)
    assert source.preprocessing["max_length"] == 40 - 2
    ids = np.full((1, 38), 5, dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    feeds = {k: v for k, v in feeds.items() if k in source.input_names}
    assert np.isfinite(source.run(feeds)["logits"]).all()  # the longest input still has a position
