# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Dream configuration, key-compatible with the Hub checkpoints (Dream-org/Dream-v0-*-7B).

Self-contained (imports only transformers and the standard-library `structural_record.py` beside it) so that both
can be copied next to a saved checkpoint as remote code.
"""

from transformers import PretrainedConfig

from .structural_record import StructuralRecordConfigMixin, validate_structural_record


class DreamConfig(StructuralRecordConfigMixin, PretrainedConfig):
    r"""Configuration of a Dream masked-diffusion language model (Qwen2 layout, bidirectional attention).

    Args:
        vocab_size (`int`), hidden_size (`int`), intermediate_size (`int`), num_hidden_layers (`int`),
        num_attention_heads (`int`), num_key_value_heads (`int`): the Qwen2 shape keys.
        hidden_act (`str`): only `"silu"`.
        max_position_embeddings (`int`), rope_theta (`float`), rms_norm_eps (`float`), tie_word_embeddings (`bool`).
        mask_token_id (`int`): the [MASK] token (151666 for Dream-7B).
        pruned_heads (`dict[int, list[int]]`, *optional*): query heads removed per layer (original indices; whole
            grouped-query groups, see the structured-pruning docs).
        intermediate_sizes (`list[int]`, *optional*): per-layer MLP width after channel pruning.

    Raises:
        `ValueError`: a malformed structural record (`pruned_heads` with a layer or head index out of range, a
            repeated head, every head of a layer, a split kv group; `intermediate_sizes` without one width in
            [1, intermediate_size] per layer); the message names the field, the layer and the allowed range.
    """

    model_type = "Dream"
    keys_to_ignore_at_inference = ["past_key_values"]
    _mlp_widths_field = "intermediate_sizes"
    _mlp_width_field = "intermediate_size"

    def __init__(
        self,
        vocab_size: int = 151936,
        hidden_size: int = 4096,
        intermediate_size: int = 22016,
        num_hidden_layers: int = 32,
        num_attention_heads: int = 32,
        num_key_value_heads: int | None = 32,
        hidden_act: str = "silu",
        max_position_embeddings: int = 32768,
        initializer_range: float = 0.02,
        rms_norm_eps: float = 1e-6,
        use_cache: bool = False,
        tie_word_embeddings: bool = False,
        rope_theta: float = 10000.0,
        rope_scaling: dict | None = None,
        use_sliding_window: bool = False,
        sliding_window: int | None = 4096,
        max_window_layers: int = 28,
        attention_dropout: float = 0.0,
        mask_token_id: int = 151666,
        pad_token_id: int | None = 151643,
        bos_token_id: int | None = 151643,
        eos_token_id: int | None = 151643,
        pruned_heads: dict | None = None,
        intermediate_sizes: list | None = None,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads if num_key_value_heads is not None else num_attention_heads
        self.hidden_act = hidden_act
        self.max_position_embeddings = max_position_embeddings
        self.initializer_range = initializer_range
        self.rms_norm_eps = rms_norm_eps
        self.use_cache = use_cache
        self.rope_theta = rope_theta
        if rope_scaling is not None:
            kwargs["rope_scaling"] = rope_scaling
        self.use_sliding_window = use_sliding_window
        self.sliding_window = sliding_window
        self.max_window_layers = max_window_layers
        self.attention_dropout = attention_dropout
        self.mask_token_id = mask_token_id
        # checked against the original sizes before any module is built from it (JSON layer keys are strings)
        self.pruned_heads, self.intermediate_sizes = validate_structural_record(
            pruned_heads, intermediate_sizes, num_layers=num_hidden_layers, num_heads=num_attention_heads,
            num_kv_heads=self.num_key_value_heads, original_width=intermediate_size,
            heads_field=f"{type(self).__name__}.pruned_heads", widths_field=f"{type(self).__name__}.intermediate_sizes",
        )
        super().__init__(
            pad_token_id=pad_token_id,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            tie_word_embeddings=tie_word_embeddings,
            **kwargs,
        )
