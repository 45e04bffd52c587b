# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""LLaDA configuration, key-compatible with the Hub checkpoints (GSAI-ML/LLaDA-8B-*, LLaDA-1.5, MMaDA backbone).

This file is self-contained (it imports only transformers and the standard-library `structural_record.py` beside
it) so that both can be copied next to a saved checkpoint as remote code.
"""

from transformers import PretrainedConfig

from .structural_record import StructuralRecordConfigMixin, validate_structural_record


class LLaDAConfig(StructuralRecordConfigMixin, PretrainedConfig):
    r"""Configuration of a LLaDA masked-diffusion language model (the `llama` block type).

    Keys follow the Hub's `config.json` of `GSAI-ML/LLaDA-8B-Base` so that Hub checkpoints load as they are; unknown
    keys are kept. Two keys are added by optimum-sinkprune for structurally pruned checkpoints:

    Args:
        d_model (`int`): hidden size.
        n_heads (`int`): attention heads per layer (before pruning).
        n_kv_heads (`int`, *optional*): key/value heads; defaults to `n_heads`.
        n_layers (`int`): number of transformer blocks.
        mlp_hidden_size (`int`, *optional*): MLP width; defaults to `mlp_ratio * d_model`.
        mlp_ratio (`int`): used when `mlp_hidden_size` is unset.
        vocab_size (`int`), embedding_size (`int`, *optional*): the embedding table has `embedding_size` rows.
        max_sequence_length (`int`): longest supported input.
        rope (`bool`), rope_theta (`float`), rope_full_precision (`bool`): rotary embeddings.
        rms_norm_eps (`float`): epsilon of the RMS norms.
        include_bias (`bool`), include_qkv_bias (`bool`): biases on all linears / on q, k, v.
        weight_tying (`bool`): reuse the embedding as the output layer.
        mask_token_id (`int`): the [MASK] token of the diffusion process (126336 for LLaDA-8B).
        input_emb_norm (`bool`): scale embeddings by sqrt(d_model).
        scale_logits (`bool`): scale logits by 1/sqrt(d_model).
        attention_layer_norm (`bool`): not supported by this implementation (no Hub checkpoint uses it).
        pruned_heads (`dict[int, list[int]]`, *optional*): heads removed per layer, as indices into the original
            heads (the transformers 4.x convention).
        mlp_hidden_sizes (`list[int]`, *optional*): per-layer MLP width after channel pruning.

    Raises:
        `ValueError`: a malformed structural record (`pruned_heads` with a layer or head index out of range, a
            repeated head, every head of a layer, a split kv group; `mlp_hidden_sizes` without one width in
            [1, original width] per layer); the message names the field, the layer and the allowed range.
    """

    model_type = "llada"
    keys_to_ignore_at_inference = ["past_key_values"]
    _mlp_widths_field = "mlp_hidden_sizes"
    _mlp_width_field = "effective_mlp_hidden_size"
    # transformers-style names, read by generic tooling (accelerate, our adapters, evaluation)
    attribute_map = {
        "hidden_size": "d_model",
        "num_attention_heads": "n_heads",
        "num_key_value_heads": "n_kv_heads",
        "num_hidden_layers": "n_layers",
        "max_position_embeddings": "max_sequence_length",
    }

    def __init__(
        self,
        d_model: int = 4096,
        n_heads: int = 32,
        n_kv_heads: int | None = None,
        n_layers: int = 32,
        mlp_ratio: int = 4,
        mlp_hidden_size: int | None = None,
        activation_type: str = "silu",
        block_type: str = "llama",
        vocab_size: int = 126464,
        embedding_size: int | None = 126464,
        max_sequence_length: int = 4096,
        rope: bool = True,
        rope_theta: float = 500000.0,
        rope_full_precision: bool = True,
        layer_norm_type: str = "rms",
        rms_norm_eps: float = 1e-5,
        include_bias: bool = False,
        include_qkv_bias: bool = False,
        weight_tying: bool = False,
        attention_layer_norm: bool = False,
        input_emb_norm: bool = False,
        scale_logits: bool = False,
        mask_token_id: int = 126336,
        eos_token_id: int = 126081,
        pad_token_id: int = 126081,
        bos_token_id: int | None = None,
        init_std: float = 0.02,
        pruned_heads: dict | None = None,
        mlp_hidden_sizes: list | None = None,
        use_cache: bool = False,
        **kwargs,
    ):
        self.d_model = d_model
        self.n_heads = n_heads
        self.n_kv_heads = n_kv_heads if n_kv_heads is not None else n_heads
        self.n_layers = n_layers
        self.mlp_ratio = mlp_ratio
        self.mlp_hidden_size = mlp_hidden_size
        self.activation_type = activation_type
        self.block_type = block_type
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size
        self.max_sequence_length = max_sequence_length
        self.rope = rope
        self.rope_theta = rope_theta
        self.rope_full_precision = rope_full_precision
        self.layer_norm_type = layer_norm_type
        self.rms_norm_eps = rms_norm_eps
        self.include_bias = include_bias
        self.include_qkv_bias = include_qkv_bias
        self.weight_tying = weight_tying
        self.attention_layer_norm = attention_layer_norm
        self.input_emb_norm = input_emb_norm
        self.scale_logits = scale_logits
        self.mask_token_id = mask_token_id
        self.init_std = init_std
        self.use_cache = use_cache
        # The structural record is checked against the original sizes before any module is built from it (JSON
        # turns the int layer keys into strings; they are normalised here).
        self.pruned_heads, self.mlp_hidden_sizes = validate_structural_record(
            pruned_heads, mlp_hidden_sizes, num_layers=n_layers, num_heads=n_heads, num_kv_heads=self.n_kv_heads,
            original_width=self.effective_mlp_hidden_size, heads_field=f"{type(self).__name__}.pruned_heads",
            widths_field=f"{type(self).__name__}.mlp_hidden_sizes",
        )
        kwargs.pop("tie_word_embeddings", None)
        super().__init__(
            eos_token_id=eos_token_id,
            pad_token_id=pad_token_id,
            bos_token_id=bos_token_id,
            tie_word_embeddings=weight_tying,
            **kwargs,
        )

    @property
    def effective_mlp_hidden_size(self) -> int:
        return self.mlp_hidden_size if self.mlp_hidden_size is not None else self.mlp_ratio * self.d_model

    def to_dict(self):
        out = super().to_dict()
        out.pop("tie_word_embeddings", None)  # written as `weight_tying`
        return out
