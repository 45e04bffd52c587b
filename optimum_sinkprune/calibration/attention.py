# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Attention-mass capture: how much softmax attention each key position receives.

For layer l and head h, with rotary-embedded queries q and keys k of one sequence,

    A^{l,h} = softmax(q kᵀ / sqrt(d) + mask)          (rows: query positions i, columns: key positions j)
    m^{l,h}_j = Σ_i A^{l,h}_{ij}                       (column sum over the valid queries i)
    m_j = Σ_l Σ_h m^{l,h}_j                            (the attention mass of position j)

which is the sink statistic of Sink-Aware Pruning (Myrzakhan et al., arXiv 2602.17664). Padding is excluded both as
key (masked out of the softmax) and as query (its rows are dropped); causal models keep their causal mask; grouped
query attention serves every query head from its kv head.

Two capture routes, both in `AttentionMassProbe`:

* `"hooks"`: forward hooks on the q and k projections (found through the model's adapter); rotary is re-applied with
  the adapter's cos/sin tables and the column sums are computed chunk by chunk next to the model's own attention. It
  depends on nothing in the model's forward code, so it also serves the Hub's LLaDA remote code.
* `"interface"`: a function registered in transformers' `AttentionInterface` (plus a mask function in
  `AttentionMaskInterface`) replaces the model's attention for the duration of the probe; it computes the attention
  output *and* the column sums from the same chunked probabilities, so the scores are computed once. Only classes that
  dispatch through the interface (`_supports_attention_backend`) can use it; the previous `_attn_implementation` is
  restored on exit.

Memory: scores are never materialised for a whole layer; one head and one chunk of queries at a time, so the extra
memory is O(batch · chunk · seq) and the block stays in cache while the softmax, the P·V product and the column sum
reread it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import torch
from torch import nn

from ..adapters import get_adapter
from ..adapters.base import ModelAdapter
from ..models.modeling_dlm_utils import apply_rotary
from ..offload import module_device

logger = logging.getLogger(__name__)

CAPTURE_METHODS = ("auto", "hooks", "interface")
# Upper bound on the float32 probability block of one head and query chunk (batch · chunk · seq · 4 bytes): small
# enough to stay in a core's L2 cache, where the softmax, the P·V product and the column sum reread it.
DEFAULT_CHUNK_BYTES = 1024 * 1024
# Queries per block when the caller gives no chunk: fewer rows make the score and P·V products inefficient, so long
# sequences get blocks above the budget (128 · seq · 4 bytes per sequence).
DEFAULT_MIN_ROWS = 128
_INTERFACE_KEY_PREFIX = "sinkprune_mass_"
_MASK_FILL = torch.finfo(torch.float32).min


# ---------------------------------------------------------------------------------------------------------------------
# pure math
# ---------------------------------------------------------------------------------------------------------------------
def default_chunk_size(
    batch: int, heads: int, seq: int, budget_bytes: int = DEFAULT_CHUNK_BYTES, min_rows: int = 1
) -> int:
    """Largest query chunk whose float32 probability block fits in `budget_bytes`, but at least `min_rows` (and at
    most `seq`) queries.

    The capture works one head at a time, so a block is [batch, chunk, seq] whatever `heads` is (kept in the
    signature so callers state the shape they capture)."""
    per_row = max(1, batch * seq * 4)
    return max(1, min(seq, max(min_rows, budget_bytes // per_row)))


def _validate_chunk_size(chunk_size: int | None) -> None:
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be None (automatic) or a positive int, got {chunk_size!r}")


def _chunk_keep(
    rows: slice,
    query_len: int,
    key_len: int,
    *,
    key_valid: torch.Tensor | None,
    causal: bool,
    mask: torch.Tensor | None,
    device: torch.device,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(bool keep mask broadcastable to [b, h, chunk, key_len] or None, additive float mask or None) for one chunk."""
    keep = None
    additive = None
    if key_valid is not None:
        keep = key_valid[:, None, None, :].to(torch.bool)
    if causal:
        # query i sits at absolute position i + (key_len - query_len) and sees keys up to that position
        q_pos = torch.arange(rows.start, rows.stop, device=device)[:, None] + (key_len - query_len)
        causal_keep = (torch.arange(key_len, device=device)[None, :] <= q_pos)[None, None]
        keep = causal_keep if keep is None else keep & causal_keep
    if mask is not None:
        part = mask[:, :, rows, :]
        if part.dtype == torch.bool:
            keep = part if keep is None else keep & part
        else:
            additive = part.to(torch.float32)
    return keep, additive


def _probability_chunks(
    query: torch.Tensor,
    key: torch.Tensor,
    *,
    scaling: float,
    key_valid: torch.Tensor | None,
    causal: bool,
    mask: torch.Tensor | None,
    chunk_size: int | None,
) -> Iterator[tuple[slice, int, torch.Tensor]]:
    """Yield (query rows, head, float32 probabilities [b, chunk, key_len]) one head and query chunk at a time (a
    block small enough to stay in cache while it is reread)."""
    b, heads, q_len, d = query.shape
    kv_heads, k_len = key.shape[1], key.shape[2]
    if kv_heads == 0 or heads % kv_heads != 0:
        raise ValueError(f"query heads ({heads}) must be a positive multiple of key heads ({kv_heads})")
    rep = heads // kv_heads
    chunk = chunk_size or default_chunk_size(b, heads, k_len, min_rows=DEFAULT_MIN_ROWS)
    # [b, kv, d, k], contiguous: query head h reads kv head h // rep (repeat_kv order) without repeating keys
    k_t = key.to(torch.float32).transpose(-1, -2).contiguous()
    for start in range(0, q_len, chunk):
        rows = slice(start, min(start + chunk, q_len))
        keep, additive = _chunk_keep(
            rows, q_len, k_len, key_valid=key_valid, causal=causal, mask=mask, device=query.device
        )
        for head in range(heads):
            q = query[:, head, rows].to(torch.float32) * scaling
            scores = torch.matmul(q, k_t[:, head // rep])
            if additive is not None:
                scores = scores + _head_slice(additive, head)
            if keep is not None:
                scores = scores.masked_fill(~_head_slice(keep, head), _MASK_FILL)
            yield rows, head, torch.softmax(scores, dim=-1)


def _head_slice(mask: torch.Tensor, head: int) -> torch.Tensor:
    """One head's [b | 1, chunk | 1, k] of a mask broadcastable to [b, heads, chunk, k]."""
    return mask[:, head if mask.shape[1] > 1 else 0]


def _valid_row_sum(probs: torch.Tensor, query_valid: torch.Tensor | None, rows: slice) -> torch.Tensor:
    """Σ over the valid query rows of one block [b, chunk, k] -> [b, k] (torch's reduction, not a matrix-vector
    product: it keeps float32 sums over thousands of rows accurate to ~1e-7)."""
    if query_valid is not None:
        probs = probs * query_valid[:, rows, None].to(probs.dtype)
    return probs.sum(dim=1)


def column_mass(
    query: torch.Tensor,
    key: torch.Tensor,
    *,
    scaling: float,
    key_valid: torch.Tensor | None = None,
    query_valid: torch.Tensor | None = None,
    causal: bool = False,
    mask: torch.Tensor | None = None,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Attention mass per key position: Σ_i softmax(q kᵀ · scaling + mask)_{ij}, computed in query chunks.

    Args:
        query (`torch.Tensor`): [batch, heads, q_len, head_dim], rotary already applied.
        key (`torch.Tensor`): [batch, kv_heads, k_len, head_dim]; `heads` must be a multiple of `kv_heads`.
        scaling (`float`): score scale (1/sqrt(head_dim) for every supported model).
        key_valid (`torch.Tensor`, *optional*): bool [batch, k_len]; False keys get no probability.
        query_valid (`torch.Tensor`, *optional*): bool [batch, q_len]; False queries contribute nothing.
        causal (`bool`): query i only sees keys j <= i (q_len == k_len).
        mask (`torch.Tensor`, *optional*): a model-prepared 4D mask [batch, 1, q_len, k_len], bool (True = attend)
            or additive float.
        chunk_size (`int`, *optional*): queries per chunk; default: one head's block near 1 MiB, at least 128 queries.

    Returns:
        `torch.Tensor`: float32 [batch, heads, k_len].
    """
    _validate_chunk_size(chunk_size)
    b, heads = query.shape[:2]
    out = torch.zeros(b, heads, key.shape[2], dtype=torch.float32, device=query.device)
    for rows, head, probs in _probability_chunks(
        query, key, scaling=scaling, key_valid=key_valid, causal=causal, mask=mask, chunk_size=chunk_size,
    ):
        out[:, head] += _valid_row_sum(probs, query_valid, rows)
    return out


def chunked_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    *,
    scaling: float,
    query_valid: torch.Tensor | None = None,
    causal: bool = False,
    mask: torch.Tensor | None = None,
    chunk_size: int | None = None,
    dropout: float = 0.0,
    training: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention output and column mass from the same chunked probabilities.

    The output keeps autograd (the probe may sit inside a forward that is differentiated); the mass is detached.
    Dropout (training only) applies to the output's probabilities, never to the mass.

    Returns:
        `(output [batch, q_len, heads, head_dim] in query's dtype, mass float32 [batch, heads, k_len])`. Padded query
        rows are excluded from the mass only; the output keeps the model's own (unmasked-row) attention for them.
    """
    b, heads, q_len, d = query.shape
    kv_heads = key.shape[1]
    rep = heads // kv_heads if kv_heads else 1
    v = value.to(torch.float32)
    chunks: list[torch.Tensor] = []  # [b, chunk, heads, dv] per query chunk
    heads_out: list[torch.Tensor] = []
    mass = torch.zeros(b, heads, key.shape[2], dtype=torch.float32, device=query.device)
    for rows, head, probs in _probability_chunks(
        query, key, scaling=scaling, key_valid=None, causal=causal, mask=mask, chunk_size=chunk_size,
    ):
        p_out = nn.functional.dropout(probs, p=dropout, training=True) if training and dropout > 0 else probs
        heads_out.append(torch.matmul(p_out, v[:, head // rep]))
        mass[:, head] += _valid_row_sum(probs.detach(), query_valid, rows)
        if head == heads - 1:
            chunks.append(torch.stack(heads_out, dim=2))
            heads_out = []
    out = chunks[0] if len(chunks) == 1 else torch.cat(chunks, dim=1)
    return out.to(query.dtype), mass


def right_align(mass: torch.Tensor, width: int) -> torch.Tensor:
    """Place per-key mass [..., k] at the last k of `width` key positions, zeros before. Pure.

    A layer that attends to fewer keys than the others reads a sliding-window cache, which keeps the most recent
    keys (DiffusionGemma's sliding decoder layers see the last context keys and the canvas).

    Raises:
        ValueError: more keys than `width`.
    """
    k = mass.shape[-1]
    if k > width:
        raise ValueError(f"a layer attended to {k} keys, more than the {width} key positions")
    if k == width:
        return mass
    return torch.cat([mass.new_zeros(*mass.shape[:-1], width - k), mass], dim=-1)


def scatter_heads(mass: torch.Tensor, kept: list[int], num_heads: int) -> torch.Tensor:
    """Place per-head mass [b, kept_heads, s] at the original head indices of a [b, num_heads, s] tensor (pruned: 0)."""
    if mass.shape[1] == num_heads:
        return mass
    out = mass.new_zeros(mass.shape[0], num_heads, mass.shape[2])
    if kept:
        out[:, kept] = mass
    return out


# ---------------------------------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------------------------------
def validate_model_inputs(
    model: nn.Module, adapter: ModelAdapter, input_ids: torch.Tensor, attention_mask: torch.Tensor | None
) -> None:
    """Raise a clear `ValueError` for input the capture cannot handle (checked before anything is modified)."""
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
        shape = tuple(input_ids.shape) if isinstance(input_ids, torch.Tensor) else type(input_ids).__name__
        raise ValueError(f"input_ids must be a [batch, seq] tensor, got {shape}")
    if input_ids.dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.bool):
        raise ValueError(f"input_ids must hold integer token ids, got dtype {input_ids.dtype}")
    if input_ids.shape[0] == 0 or input_ids.shape[1] == 0:
        raise ValueError(f"input_ids is empty (shape {tuple(input_ids.shape)}); pass at least one token per sequence")
    max_len = adapter.max_length(model)
    if input_ids.shape[1] > max_len:
        raise ValueError(
            f"input_ids has sequence length {input_ids.shape[1]}, longer than the model's maximum of {max_len}"
        )
    if attention_mask is not None:
        if tuple(attention_mask.shape) != tuple(input_ids.shape):
            raise ValueError(
                f"attention_mask must be a 2D padding mask with the shape of input_ids {tuple(input_ids.shape)}, "
                f"got {tuple(attention_mask.shape)}"
            )
        if not bool(attention_mask.to(torch.bool).any(dim=1).all()):
            raise ValueError("attention_mask has a sequence with no valid (1) position")


# ---------------------------------------------------------------------------------------------------------------------
# the probe
# ---------------------------------------------------------------------------------------------------------------------
def supports_attention_interface(model: nn.Module) -> bool:
    """True when the model's class dispatches attention through transformers' `AttentionInterface`."""
    return bool(getattr(type(model), "_supports_attention_backend", False)) and hasattr(model.config, "_attn_implementation")


class AttentionMassProbe:
    """Context manager that captures the attention mass of the forward passes the caller runs inside it.

    ```python
    >>> with AttentionMassProbe(model, per_head=True) as probe:
    ...     model(input_ids=ids)
    >>> probe.mass            # [batch, seq], summed over layers and heads
    >>> probe.per_head_mass   # [batch, layers, heads, seq]
    ```

    Each forward overwrites the previous capture (`mass` always describes the latest forward). Hooks, interface
    registrations and the model's `_attn_implementation` are restored in `finally`, also when the forward raises.

    Args:
        model (`nn.Module`): a supported model (LLaDA, Dream, MMaDA, Llama, Qwen2; see `optimum_sinkprune.adapters`).
        per_head (`bool`): also keep [batch, layers, heads, seq] (`per_head_mass`). Heads removed by structured
            pruning are reported as zeros at their original index.
        chunk_size (`int`, *optional*): query chunk length; default: one head's block near 1 MiB, at least 128
            queries.
        attention_mask (`torch.Tensor`, *optional*): [batch, seq] padding mask (1 = token). When not given, the
            `attention_mask` passed to the model's forward is used.
        method (`str`): "auto" (the interface route where the class supports it, else hooks), "hooks" or "interface".
        adapter (`ModelAdapter`, *optional*): the run's adapter (default: `get_adapter(model)`).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        per_head: bool = False,
        chunk_size: int | None = None,
        attention_mask: torch.Tensor | None = None,
        method: str = "auto",
        adapter: ModelAdapter | None = None,
    ):
        _validate_chunk_size(chunk_size)
        if method not in CAPTURE_METHODS:
            raise ValueError(f"method={method!r} is not one of {CAPTURE_METHODS}")
        self.model = model
        self.adapter = adapter or get_adapter(model)
        nested = str(getattr(model.config, "_attn_implementation", "")).startswith(_INTERFACE_KEY_PREFIX)
        if method == "auto":
            # inside another probe's interface route the attention dispatch is taken: hooks see the same forward
            method = "interface" if supports_attention_interface(model) and not nested else "hooks"
        elif method == "interface" and nested:
            raise ValueError("another AttentionMassProbe already holds this model's attention interface; use method='hooks'")
        elif method == "interface" and not supports_attention_interface(model):
            raise ValueError(
                f"method='interface' needs a class that dispatches attention through transformers' AttentionInterface; "
                f"{type(model).__name__} does not declare `_supports_attention_backend`; use method='hooks'"
            )
        self.method = method
        self.per_head = per_head
        self.chunk_size = chunk_size
        self._given_mask = attention_mask
        self._forward_mask: torch.Tensor | None = None
        self._layer_mass: dict[int, torch.Tensor] = {}
        self._pending: dict[tuple[int, str], torch.Tensor] = {}
        self._handles: list = []
        self._restore: list = []
        self._rotary_cache: dict = {}
        blocks = self.adapter.blocks(model)
        self.num_layers = len(blocks)
        self.num_heads = self.adapter.original_num_heads(model)
        self.head_dim = self.adapter.head_dim(model)
        pruned = self.adapter.pruned_heads(model)
        self._kept = [
            [h for h in range(self.num_heads) if h not in set(pruned.get(i, []))] for i in range(self.num_layers)
        ]
        self._active = False
        self._forwards = 0  # forwards of `model` seen (a submodule called directly is not counted)

    # ---- results ---------------------------------------------------------------------------------------------------
    @property
    def per_head_mass(self) -> torch.Tensor:
        """[batch, layers, heads, seq] float32 mass of the latest forward (needs `per_head=True`)."""
        if not self.per_head:
            raise RuntimeError("per_head_mass needs AttentionMassProbe(..., per_head=True)")
        layers = self._collect()
        width = max(m.shape[-1] for m in layers.values())
        return torch.stack(
            [right_align(scatter_heads(layers[i], self._kept[i], self.num_heads), width)
             for i in range(self.num_layers)], dim=1
        )

    @property
    def mass(self) -> torch.Tensor:
        """[batch, seq] float32 mass of the latest forward, summed over layers and heads."""
        layers = self._collect()
        # layers reading a sliding-window cache see fewer (the most recent) keys: aligned at the end
        width = max(m.shape[-1] for m in layers.values())
        if self.per_head:
            return sum(right_align(m.sum(dim=1), width) for m in layers.values())
        return sum(right_align(m, width) for m in layers.values())

    def _collect(self) -> dict[int, torch.Tensor]:
        if not self._layer_mass and not self._forwards:
            raise RuntimeError("no forward pass ran inside the AttentionMassProbe, so no attention mass was captured")
        missing = [i for i in range(self.num_layers) if i not in self._layer_mass]
        if missing and self._layer_mass:
            # layers whose heads were all pruned skip attention altogether: they receive no mass
            like = next(iter(self._layer_mass.values()))
            for i in [i for i in missing if not self._kept[i]]:
                shape = (like.shape[0], 0, like.shape[-1]) if self.per_head else (like.shape[0], like.shape[-1])
                self._layer_mass[i] = like.new_zeros(shape)
            missing = [i for i in missing if self._kept[i]]
        if missing:
            raise RuntimeError(
                f"attention mass was not captured for layers {missing} (method={self.method!r}); "
                "the model's forward did not go through the expected modules"
                + ("; try method='hooks'" if self.method == "interface" else "")
            )
        return self._layer_mass

    def _store(self, layer: int, mass: torch.Tensor) -> None:
        # mass: [b, heads_present, s]; every layer's on the first stored layer's device (blocks may sit on several)
        if self._layer_mass:
            mass = mass.to(next(iter(self._layer_mass.values())).device)
        self._layer_mass[layer] = mass if self.per_head else mass.sum(dim=1)

    def _valid(self, batch: int, seq: int, device) -> torch.Tensor | None:
        mask = self._given_mask if self._given_mask is not None else self._forward_mask
        if mask is None:
            return None
        if tuple(mask.shape) != (batch, seq):
            raise ValueError(
                f"attention_mask has shape {tuple(mask.shape)} but the forward ran on [batch, seq]=({batch}, {seq})"
            )
        return mask.to(device=device, dtype=torch.bool)

    # ---- lifecycle -------------------------------------------------------------------------------------------------
    def __enter__(self) -> AttentionMassProbe:
        if self._active:
            raise RuntimeError("this AttentionMassProbe is already active")
        try:
            self._handles.append(
                self.model.register_forward_pre_hook(self._on_model_forward, with_kwargs=True)
            )
            if self.method == "hooks":
                self._install_hooks()
            else:
                self._install_interface()
        except BaseException:
            self._remove()
            raise
        self._active = True
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._remove()

    def _remove(self) -> None:
        try:
            for handle in self._handles:
                handle.remove()
        finally:
            self._handles = []
            for undo in reversed(self._restore):
                undo()
            self._restore = []
            self._pending.clear()
            self._rotary_cache.clear()
            self._active = False

    def _on_model_forward(self, module, args, kwargs):
        mask = kwargs.get("attention_mask")
        if mask is None and len(args) > 1 and isinstance(args[1], torch.Tensor):
            mask = args[1]
        self._forward_mask = mask if isinstance(mask, torch.Tensor) and mask.dim() == 2 else None
        self._forwards += 1
        self._layer_mass.clear()
        self._pending.clear()
        self._rotary_cache.clear()

    # ---- route 1: projection hooks -------------------------------------------------------------------------------
    def _install_hooks(self) -> None:
        for i, block in enumerate(self.adapter.blocks(self.model)):
            for role in ("q", "k"):
                proj = self.adapter.projection(block, role)
                self._handles.append(proj.register_forward_hook(self._make_projection_hook(i, role, block)))

    def _make_projection_hook(self, layer: int, role: str, block: nn.Module):
        def hook(module, args, output):
            self._pending[(layer, role)] = output
            other = "k" if role == "q" else "q"
            if (layer, other) in self._pending:
                q = self._pending.pop((layer, "q"))
                k = self._pending.pop((layer, "k"))
                self._store(layer, self._mass_from_projections(layer, block, q, k))

        return hook

    def _mass_from_projections(self, layer: int, block: nn.Module, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            b, s = q.shape[:2]
            d = self.head_dim
            # what the family's attention does to q/k before rotary (e.g. the Hub LLaDA code's norms and clipping)
            q, k = self.adapter.qk_postprocess(block, q, k, config=self.model.config)
            q = q.reshape(b, s, -1, d).transpose(1, 2)
            k = k.reshape(b, s, -1, d).transpose(1, 2)
            if q.shape[1] == 0:
                return q.new_zeros(b, 0, s, dtype=torch.float32)
            cos_sin = self._cos_sin(b, s, q.device)
            if cos_sin is not None:
                q, k = apply_rotary(q.float(), *cos_sin), apply_rotary(k.float(), *cos_sin)
            valid = self._valid(b, s, q.device)
            scaling = self.adapter.attention_scaling(block, d)
            return column_mass(
                q, k, scaling=scaling, key_valid=valid, query_valid=valid, causal=self.adapter.is_causal,
                chunk_size=self.chunk_size,
            )

    def _cos_sin(self, batch: int, seq: int, device):
        key = (batch, seq, str(device))
        if key not in self._rotary_cache:
            positions = torch.arange(seq, device=device)[None].expand(batch, -1)
            self._rotary_cache[key] = self.adapter.rotary_cos_sin(self.model, positions, torch.float32)
        return self._rotary_cache[key]

    # ---- route 2: transformers attention interface --------------------------------------------------------------------
    def _install_interface(self) -> None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
        from transformers.modeling_utils import AttentionInterface

        key = f"{_INTERFACE_KEY_PREFIX}{id(self)}"
        layer_of = {
            id(self.adapter.attention_module(block)): i for i, block in enumerate(self.adapter.blocks(self.model))
        }
        probe = self

        def attention(module, query, key_states, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
            # Same contract as transformers' attention functions: returns ([b, s, h, d], None).
            if id(module) not in layer_of:
                # attention outside the observed blocks (an encoder stack feeding a decoder's cache) runs as sdpa
                # (the masks built under this key are sdpa's) and is not recorded
                return sdpa_attention_forward(module, query, key_states, value, attention_mask, scaling=scaling,
                                              dropout=dropout, **kwargs)
            layer = layer_of[id(module)]
            b, _, q_len, d = query.shape
            is_causal = kwargs.get("is_causal")
            if is_causal is None:
                is_causal = getattr(module, "is_causal", False)
            causal = bool(is_causal) and attention_mask is None and q_len > 1
            valid = probe._valid(b, q_len, query.device)
            out, mass = chunked_attention(
                query, key_states, value, scaling=float(scaling if scaling is not None else d**-0.5),
                query_valid=valid, causal=causal, mask=attention_mask, chunk_size=probe.chunk_size,
                dropout=float(dropout or 0.0), training=module.training,
            )
            probe._store(layer, mass)
            return out, None

        config = self.model.config
        previous_impl = config._attn_implementation
        previous_fn = AttentionInterface._global_mapping.get(key)
        previous_mask = AttentionMaskInterface._global_mapping.get(key)

        def undo() -> None:
            config._attn_implementation = previous_impl
            for mapping, prev in (
                (AttentionInterface._global_mapping, previous_fn),
                (AttentionMaskInterface._global_mapping, previous_mask),
            ):
                if prev is None:
                    mapping.pop(key, None)
                else:
                    mapping[key] = prev

        self._restore.append(undo)
        AttentionInterface.register(key, attention)
        # Boolean masks (True = attend): causal models build them through create_causal_mask with this entry.
        AttentionMaskInterface.register(key, sdpa_mask)
        config._attn_implementation = key


# ---------------------------------------------------------------------------------------------------------------------
# one-call API
# ---------------------------------------------------------------------------------------------------------------------
def attention_mass(
    model: nn.Module,
    input_ids: torch.LongTensor,
    attention_mask: torch.Tensor | None = None,
    per_head: bool = False,
    chunk_size: int | None = None,
    method: str = "auto",
) -> torch.Tensor:
    """Attention probability mass each key position receives, summed over queries, heads and layers.

    m_j = Σ_l Σ_h Σ_i softmax(q_i kᵀ / sqrt(d))_j with rotary applied, padding excluded as key and query, the causal
    mask kept for causal models, kv heads expanded to their query heads.

    Args:
        model (`nn.Module`): a supported model (see `optimum_sinkprune.adapters.supported_model_types()`).
        input_ids (`torch.LongTensor`): [batch, seq] token ids, seq <= the model's maximum length.
        attention_mask (`torch.Tensor`, *optional*): [batch, seq], 1 for tokens and 0 for padding.
        per_head (`bool`): return [batch, layers, heads, seq] instead of [batch, seq].
        chunk_size (`int`, *optional*): query chunk length (default: one head's block near 1 MiB, at least 128
            queries).
        method (`str`): "auto", "hooks" or "interface" (see `AttentionMassProbe`).

    Returns:
        `torch.Tensor`: float32 [batch, seq] (or [batch, layers, heads, seq]); padded positions are 0.

    Raises:
        `UnsupportedModelError`: no adapter serves the model.
        `ValueError`: empty input, a sequence longer than the model's maximum, a mask of the wrong shape.
    """
    adapter = get_adapter(model)
    validate_model_inputs(model, adapter, input_ids, attention_mask)
    _validate_chunk_size(chunk_size)
    # the embedding's device (accelerate's execution device when dispatched, even if its weight is offloaded)
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else model
    device = module_device(embeddings)
    input_ids = input_ids.to(device)
    if attention_mask is not None:
        attention_mask = attention_mask.to(device)
    with torch.no_grad(), AttentionMassProbe(
        model, per_head=per_head, chunk_size=chunk_size, attention_mask=attention_mask, method=method
    ) as probe:
        model(input_ids=input_ids, attention_mask=attention_mask)
        used = probe.method
        try:
            return probe.per_head_mass if per_head else probe.mass
        except RuntimeError:
            # a class that declares the attention backend but bypasses it: the hooks route still works
            if method != "auto" or used != "interface":
                raise
    logger.info("%s did not dispatch attention through the interface; capturing with hooks", type(model).__name__)
    return attention_mass(model, input_ids, attention_mask, per_head=per_head, chunk_size=chunk_size, method="hooks")


def expected_total_mass(attention_mask: torch.Tensor | None, batch: int, seq: int, layers: int, heads: int) -> torch.Tensor:
    """Σ_j m_j for each sequence: every valid query row sums to 1 in each layer and head ([batch] float)."""
    valid = attention_mask.sum(dim=1).to(torch.float32) if attention_mask is not None else torch.full((batch,), float(seq))
    return valid * layers * heads


__all__ = [
    "CAPTURE_METHODS",
    "AttentionMassProbe",
    "attention_mass",
    "chunked_attention",
    "column_mass",
    "default_chunk_size",
    "expected_total_mass",
    "right_align",
    "scatter_heads",
    "supports_attention_interface",
    "validate_model_inputs",
]
