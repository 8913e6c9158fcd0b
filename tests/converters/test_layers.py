"""Matching source layers to exported ops by module path, for converters that rewrite weight values (TFLite)."""

from bmsdk.converters.layers import match_by_scope

T = "transformers.models.bert.modeling_bert."
FFN_OUT = (
    f"w.Named/{T}BertModel_bert/{T}BertEncoder_encoder/{T}BertLayer_0/{T}BertOutput_output/"
    "torch.nn.modules.linear.Linear_dense;3;"
)
ATTN_OUT = (
    f"w.Named/{T}BertModel_bert/{T}BertEncoder_encoder/{T}BertLayer_0/{T}BertAttention_attention/"
    f"{T}BertSelfOutput_output/torch.nn.modules.linear.Linear_dense;1;"
)
CONV = "w.Named/m.Net_inner/torch.nn.modules.container.Sequential_features/torch.nn.modules.conv.Conv2d_3;"


def test_module_lists_are_skipped_but_paths_must_agree():
    names = [
        "inner.bert.encoder.layer.0.output.dense",
        "inner.bert.encoder.layer.0.attention.output.dense",
        "inner.features.3",
        "inner.features.0",
        "inner.bert.encoder.layer.1.output.dense",
    ]
    found = match_by_scope([FFN_OUT, ATTN_OUT, CONV], names)
    assert found == {
        "inner.bert.encoder.layer.0.output.dense": [FFN_OUT],
        "inner.bert.encoder.layer.0.attention.output.dense": [ATTN_OUT],
        "inner.features.3": [CONV],
    }
