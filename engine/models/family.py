"""The family contract: what every backbone in engine/models/ declares.

A family is an `nn.Module` backbone (PackedBatch, AttentionContext -> hidden [T, C]) whose class declares its
config class, the prefixes task models put before its names, its checkpoint `Conversion` table, the heads
it can build beyond the generic ones (`heads`), and the builders for those heads. Loading reads these
declarations; nothing is probed.
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from engine.errors import UnsupportedTask
from engine.heads.pooling import PoolingMode
from engine.heads.specs import Head
from engine.models.conversion import Conversion


class Backbone(nn.Module):
    config_class: ClassVar[Any]  # a dataclass with `from_hf_config(dict)`, `hidden_size`, `max_length`
    backbone_prefixes: ClassVar[tuple[str, ...]] = ("",)
    conversion: ClassVar[Conversion] = Conversion()
    heads: ClassVar[frozenset[Head]] = frozenset()  # family-built heads it supports (HeadSpec.family_builder)
    default_pooling: ClassVar[PoolingMode] = PoolingMode.MEAN  # without sentence-transformers metadata
    needs_attention_bias: ClassVar[bool] = False  # the attention backend must take an additive bias (MPNet)
    own_attention: ClassVar[Any] = None  # a family that runs its own attention math (DeBERTa's c2p/p2c)

    # --- head builders (override for each head in `heads`) --------------------------------------

    @staticmethod
    def sequence_head(cfg: Any, num_labels: int) -> nn.Module:
        raise UnsupportedTask("this family has no sequence-classification head")

    @staticmethod
    def token_head(cfg: Any, num_labels: int) -> nn.Module:
        raise UnsupportedTask("this family has no token-classification head")

    @staticmethod
    def mlm_head(cfg: Any) -> Any:
        raise UnsupportedTask("this family has no masked-LM head, so no SPLADE vectors")

    @staticmethod
    def yes_no_head(cfg: Any, hf: dict[str, Any], yes_id: int, no_id: int) -> Any:
        raise UnsupportedTask("this family has no LM head to score yes/no with")


# Which builder each family-built head uses (a test checks every declared head overrides it).
BUILDERS: dict[Head, str] = {
    Head.SEQUENCE_CLASSIFICATION: "sequence_head",
    Head.TOKEN_CLASSIFICATION: "token_head",
    Head.SPARSE: "mlm_head",
    Head.YES_NO_RERANK: "yes_no_head",
}
