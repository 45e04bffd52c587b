# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""MMaDA configuration: the LLaDA keys plus MMaDA's multimodal keys (Gen-Verse/MMaDA-8B-Base and its siblings).

Self-contained (imports only transformers and the LLaDA configuration) so that it can be copied next to a saved
checkpoint as remote code.
"""

from .configuration_llada import LLaDAConfig

# MMaDA's own multimodal keys; all are kept and written back, none changes the language backbone's math.
MMADA_KEYS = (
    "llm_vocab_size",
    "codebook_size",
    "num_vq_tokens",
    "num_new_special_tokens",
    "new_vocab_size",
    "w_clip_vit",
    "llm_model_path",
    "pretrained_model_path",
    "gradient_checkpointing",
)


class MMaDAConfig(LLaDAConfig):
    r"""Configuration of MMaDA's language backbone (`model_type: "mmada"`, `architectures: ["MMadaModelLM"]`).

    MMaDA is LLaDA-8B with its token embedding and output layer extended to cover image tokens: text ids
    `[0, llm_vocab_size)`, then `num_new_special_tokens` special tokens, then the `codebook_size` codes of the
    MAGVIT-v2 image tokenizer. Every LLaDA key (see [`LLaDAConfig`]) is accepted; the multimodal keys below are kept as
    they are (they describe how MMaDA's own prompting code lays out image tokens, not the network).

    Args:
        llm_vocab_size (`int`, *optional*): size of the text vocabulary (126464 for MMaDA-8B).
        codebook_size (`int`, *optional*): number of image-token codes (8192 for MAGVIT-v2).
        num_vq_tokens (`int`, *optional*): image tokens per image (256 or 1024 depending on resolution).
        num_new_special_tokens (`int`, *optional*): special tokens added between text and image ids.
        new_vocab_size (`int`, *optional*): rows of the extended embedding (134656 = 126464 + 8192 for MMaDA-8B).
        w_clip_vit (`bool`, *optional*): MMaDA's switch for CLIP-ViT image features (False in the released models).
        llm_model_path / pretrained_model_path (`str`, *optional*): where MMaDA's training started; informational.
        gradient_checkpointing (`bool`, *optional*): MMaDA's training flag; informational.
        **kwargs: every [`LLaDAConfig`] argument, plus unknown keys (kept).
    """

    model_type = "mmada"

    def __init__(
        self,
        llm_vocab_size: int | None = None,
        codebook_size: int | None = None,
        num_vq_tokens: int | None = None,
        num_new_special_tokens: int | None = None,
        new_vocab_size: int | None = None,
        w_clip_vit: bool | None = None,
        **kwargs,
    ):
        self.llm_vocab_size = llm_vocab_size
        self.codebook_size = codebook_size
        self.num_vq_tokens = num_vq_tokens
        self.num_new_special_tokens = num_new_special_tokens
        self.new_vocab_size = new_vocab_size
        self.w_clip_vit = w_clip_vit
        super().__init__(**kwargs)

    @property
    def embedding_rows(self) -> int:
        """Rows of the token embedding (and of the untied output layer): the extended vocabulary.

        MMaDA's checkpoints were produced by resizing LLaDA's embedding to `new_vocab_size`, which updates
        `vocab_size` but not necessarily `embedding_size`; the largest of the three is the table that was saved."""
        sizes = [self.embedding_size or self.vocab_size, self.vocab_size, self.new_vocab_size or 0]
        return int(max(s for s in sizes if s is not None))


# The name MMaDA's own code uses.
MMadaConfig = MMaDAConfig

__all__ = ["MMADA_KEYS", "MMaDAConfig", "MMadaConfig"]
