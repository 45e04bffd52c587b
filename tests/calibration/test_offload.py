# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Pruning models that accelerate spreads over devices, CPU offload and disk offload: the same pruned weights and
logits as in memory, pruned weights written into the offload folder (never into the checkpoint), a save that reloads
them, and bad placement arguments refused before any weight or file changes."""

from __future__ import annotations

import hashlib
import os

import pytest
import torch

from optimum_sinkprune import SinkAwarePruner, SinkAwarePruningConfig
from optimum_sinkprune.adapters import get_adapter
from optimum_sinkprune.counting import count_parameters
from optimum_sinkprune.hub.load import load_model
from optimum_sinkprune.methods import read_weight
from optimum_sinkprune.offload import check_max_memory, offload_slot, parse_max_memory

SMALL = dict(num_samples=3, seq_len=16, diffusion_steps=10, sample_interval=5, block_size=32, sparsity=0.5)
BLOCKS = "model.transformer.blocks"
# blocks alternate between memory and disk; the embedding, final norm and head stay in memory
CPU_DISK = {"model.transformer.wte": "cpu", f"{BLOCKS}.0": "cpu", f"{BLOCKS}.1": "disk", f"{BLOCKS}.2": "cpu",
            f"{BLOCKS}.3": "disk", "model.transformer.ln_f": "cpu", "model.transformer.ff_out": "cpu"}


def _ids(n=3, s=16, seed=0):
    return torch.randint(2, 120, (n, s), generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def checkpoint(tmp_path, tiny_configs, randomize):
    """A 4-block tiny LLaDA with O(1)-scale random weights, saved as safetensors."""
    from optimum_sinkprune.models import LLaDAModelLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LLaDAModelLM(tiny_configs.llada(n_layers=4))
    randomize(model, seed=7).save_pretrained(tmp_path / "ckpt")
    return tmp_path / "ckpt"


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _weights(model) -> dict[str, torch.Tensor]:
    return {name: read_weight(layer).clone() for name, layer in get_adapter(model).linear_layers(model).items()}


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def _assert_same_weights(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=0, atol=1e-6, msg=name)
        assert torch.equal(got[name] == 0, want[name] == 0), name


@pytest.mark.parametrize("method", ["wanda", "sparsegpt", "sink_sparsegpt", "sink_wanda"])
def test_cpu_and_disk_device_map_prunes_like_memory(checkpoint, tmp_path, method):
    config = SinkAwarePruningConfig(method=method, **SMALL)
    dense = SinkAwarePruner(load_model(checkpoint, dtype="float32"))
    dense.prune(config, _ids(), progress=False)

    before = _sha(checkpoint / "model.safetensors")
    folder = tmp_path / "offload"
    offloaded = SinkAwarePruner.from_pretrained(checkpoint, dtype="float32", device_map=CPU_DISK,
                                                offload_folder=str(folder))
    model = offloaded.model
    q1 = get_adapter(model).linear_layers(model)[f"{BLOCKS}.1.q_proj"]
    assert q1.weight.device.type == "meta" and offload_slot(q1, "weight").on_disk  # really on disk
    offloaded.prune(config, _ids(), progress=False)

    _assert_same_weights(_weights(model), _weights(dense.model))
    ids = _ids(2, 16, seed=1)
    torch.testing.assert_close(_logits(model, ids), _logits(dense.model, ids), rtol=1e-5, atol=1e-5)
    # the pruned weights of the disk blocks are the offload folder's files; the checkpoint is untouched
    assert _sha(checkpoint / "model.safetensors") == before
    from accelerate.utils import load_offloaded_weight

    index = __import__("json").loads((folder / "index.json").read_text())
    key = f"{BLOCKS}.3.ff_out.weight"
    on_file = load_offloaded_weight(str(folder / f"{key}.dat"), index[key])
    assert torch.equal(on_file, dense.model.get_submodule(key.rsplit(".", 1)[0]).weight)
    assert f"{BLOCKS}.0.q_proj.weight" not in index  # blocks in memory are pruned in place
    # the report counts the same zeros
    assert offloaded.report.model_zeros == dense.report.model_zeros
    assert count_parameters(model) == count_parameters(dense.model)
    from optimum_sinkprune.evaluation.metrics import count_block_parameters

    assert count_block_parameters(model) == count_block_parameters(dense.model)  # the evaluation table's counts


def test_dispatched_bfloat16_dat_files_and_restore_on_error(checkpoint, tmp_path):
    """`dispatch_model(offload_dir=...)` keeps disk weights as .dat memory maps (bfloat16 as int16): pruning rewrites
    them; a run failing in a later block writes the earlier disk blocks' original weights back."""
    from accelerate import dispatch_model

    config = SinkAwarePruningConfig(method="sparsegpt", **SMALL)
    dense = load_model(checkpoint, dtype="bfloat16")
    SinkAwarePruner(dense).prune(config, _ids(), progress=False)
    model = dispatch_model(load_model(checkpoint, dtype="bfloat16"), device_map=CPU_DISK,
                           offload_dir=str(tmp_path / "dat"))
    assert offload_slot(model.get_submodule(f"{BLOCKS}.1.q_proj"), "weight").on_disk
    SinkAwarePruner(model).prune(config, _ids(), progress=False)
    _assert_same_weights(_weights(model), _weights(dense))

    # a failure in block 2 after blocks 0 and 1 (on disk) were pruned: both come back as they were
    failing = load_model(checkpoint, dtype="float32")
    with torch.no_grad():
        failing.get_submodule(f"{BLOCKS}.2.ff_norm").weight[3] = 1e38  # finite, but its activations overflow
    original = _weights(failing)
    failing = dispatch_model(failing, device_map=CPU_DISK, offload_dir=str(tmp_path / "dat2"))
    with pytest.raises(FloatingPointError):
        SinkAwarePruner(failing).prune(config, _ids(), progress=False)
    _assert_same_weights(_weights(failing), original)


def test_auto_device_map_over_cpu_and_disk(checkpoint, tmp_path):
    """device_map="auto" with a CPU limit of about two blocks: accelerate puts the rest on disk."""
    from optimum_sinkprune.calibration.memory import block_weight_bytes

    config = SinkAwarePruningConfig(method="wanda", **SMALL)
    dense = SinkAwarePruner(load_model(checkpoint, dtype="float32"))
    dense.prune(config, _ids(), progress=False)
    block = max(block_weight_bytes(dense.model, get_adapter(dense.model)).values())
    pruner = SinkAwarePruner.from_pretrained(checkpoint, dtype="float32", device_map="auto",
                                             max_memory={"cpu": 2.5 * block + 64 * 1024},
                                             offload_folder=str(tmp_path / "offload"))
    placed = set(pruner.model.hf_device_map.values())
    assert "disk" in placed and "cpu" in placed, pruner.model.hf_device_map
    pruner.prune(config, _ids(), progress=False)
    _assert_same_weights(_weights(pruner.model), _weights(dense.model))


@pytest.mark.slow
def test_saved_offloaded_model_reloads_pruned(checkpoint, tmp_path):
    config = SinkAwarePruningConfig(method="sparsegpt", **SMALL)
    dense = SinkAwarePruner(load_model(checkpoint, dtype="float32"))
    dense.prune(config, _ids(), progress=False)
    pruner = SinkAwarePruner.from_pretrained(checkpoint, dtype="float32", device_map=CPU_DISK,
                                             offload_folder=str(tmp_path / "offload"))
    pruner.prune(config, _ids(), progress=False)
    pruner.save_pretrained(tmp_path / "pruned")
    reloaded = load_model(tmp_path / "pruned", dtype="float32")
    _assert_same_weights(_weights(reloaded), _weights(dense.model))
    ids = _ids(2, 16, seed=2)
    torch.testing.assert_close(_logits(reloaded, ids), _logits(dense.model, ids), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------------------------------
# bad input: refused before any weight or file changes
# ------------------------------------------------------------------------------------------------------------------
def test_block_on_meta_or_disk_without_folder_refused_at_load(checkpoint):
    with pytest.raises(ValueError, match=rf"'{BLOCKS}\.1'\] on 'meta'.*'disk' \(with offload_folder\)"):
        load_model(checkpoint, device_map={**CPU_DISK, f"{BLOCKS}.1": "meta"}, offload_folder=None)
    with pytest.raises(ValueError, match=rf"\['{BLOCKS}\.1', '{BLOCKS}\.3'\] on 'disk' but offload_folder is not"):
        load_model(checkpoint, device_map=CPU_DISK)
    # "auto" under a CPU limit resolves to disk for some modules: the same refusal, naming them
    with pytest.raises(ValueError, match=r"device_map puts \[.+\] on 'disk' but offload_folder is not given"):
        load_model(checkpoint, dtype="float32", device_map="auto", max_memory={"cpu": "150KiB"})


def test_block_without_weights_or_folder_refused_by_prune(checkpoint):
    """Models placed outside the loader: a block left on the meta device, a disk block without offload folder."""
    from transformers import AutoModelForCausalLM

    config = SinkAwarePruningConfig(method="sparsegpt", **SMALL)
    model = load_model(checkpoint, dtype="float32")
    model.get_submodule(f"{BLOCKS}.2").to("meta")
    before = _weights(load_model(checkpoint, dtype="float32"))
    with pytest.raises(ValueError, match=rf"block '{BLOCKS}\.2' has {BLOCKS}\.2\.\w+\.weight on the meta device"):
        SinkAwarePruner(model).prune(config, _ids(), progress=False)
    for name, layer in get_adapter(model).linear_layers(model).items():
        if layer.weight.device.type != "meta":
            assert torch.equal(layer.weight, before[name]), name

    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype="float32", device_map=CPU_DISK)  # no folder
    with pytest.raises(ValueError, match=rf"block '{BLOCKS}\.1' is offloaded to disk without an offload folder"):
        SinkAwarePruner(model).prune(config, _ids(), progress=False)
    _assert_same_weights(_weights(model), before)


def test_offload_folder_not_writable(checkpoint, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    with pytest.raises(ValueError, match=r"offload_folder='.*a-file' is not a folder"):
        load_model(checkpoint, device_map=CPU_DISK, offload_folder=str(a_file))
    with pytest.raises(ValueError, match=r"offload_folder='.*a-file/sub' is not a writable folder"):
        load_model(checkpoint, device_map=CPU_DISK, offload_folder=str(a_file / "sub"))
    fresh = tmp_path / "new" / "deeper"
    load_model(checkpoint, offload_folder=str(fresh))  # made by the probe and removed again: nothing left behind
    assert not (tmp_path / "new").exists()

    # the folder gone after loading (weights still read from the checkpoint): prune refuses, nothing changes
    folder = tmp_path / "offload"
    model = load_model(checkpoint, dtype="float32", device_map=CPU_DISK, offload_folder=str(folder))
    before = _weights(model)
    os.rmdir(folder)
    folder.write_text("not a folder any more")
    with pytest.raises(ValueError, match=rf"block '{BLOCKS}\.1' is offloaded to disk .* is not a folder"):
        SinkAwarePruner(model).prune(SinkAwarePruningConfig(method="wanda", **SMALL), _ids(), progress=False)
    _assert_same_weights(_weights(model), before)


def test_max_memory_below_one_block(checkpoint, tmp_path):
    from optimum_sinkprune.calibration.memory import block_weight_bytes

    model = load_model(checkpoint, dtype="float32")
    blocks = block_weight_bytes(model, get_adapter(model))
    need = max(blocks.values())
    with pytest.raises(MemoryError, match=rf"at most 0\.01 MiB \(10240 bytes\) on any device \('cpu'\), but one "
                                          rf"block \({BLOCKS}\.0\) needs {need / 1024**2:.2f} MiB \({need} bytes"):
        load_model(checkpoint, dtype="float32", device_map="auto", max_memory={"cpu": "10KiB"},
                   offload_folder=str(tmp_path / "offload"))
    assert not (tmp_path / "offload").exists()  # refused before the load made anything
    with pytest.raises(ValueError, match=r"max_memory\['cpu'\]='lots' is not a size"):
        load_model(checkpoint, device_map="auto", max_memory={"cpu": "lots"})
    with pytest.raises(MemoryError, match=r"gives no device to run on \(only 'disk'\)"):
        check_max_memory({"disk": "1GiB"}, blocks)

    # enough for the weights at load, not for the weights plus a SparseGPT step: prune refuses with both numbers
    pruner = SinkAwarePruner.from_pretrained(checkpoint, dtype="float32", device_map="auto",
                                             max_memory={"cpu": need + 1024}, offload_folder=str(tmp_path / "o2"))
    before = _weights(pruner.model)
    with pytest.raises(MemoryError, match=r"needs [\d.]+ MiB \(\d+ bytes: [\d.]+ MiB of weights \+ [\d.]+ MiB of "
                                          r"working memory\)"):
        pruner.prune(SinkAwarePruningConfig(method="sparsegpt", **SMALL), _ids(), progress=False)
    _assert_same_weights(_weights(pruner.model), before)


def test_parse_max_memory():
    assert parse_max_memory({0: "1KiB", "cpu": 2048, "disk": "1GB"}) == {0: 1024, "cpu": 2048, "disk": 10**9}
    for bad in ({}, [("cpu", 1)], {"cpu": True}, {"cpu": -1}):
        with pytest.raises(ValueError, match="max_memory"):
            parse_max_memory(bad)


def test_offload_folder_without_space_refused(checkpoint, tmp_path, monkeypatch):
    from optimum_sinkprune.calibration import memory

    folder = tmp_path / "offload"
    model = load_model(checkpoint, dtype="float32", device_map=CPU_DISK, offload_folder=str(folder))
    layers = get_adapter(model).linear_layers(model)
    on_disk = [layer for name, layer in layers.items() if name.startswith((f"{BLOCKS}.1.", f"{BLOCKS}.3."))]
    sizes = [layer.weight.numel() * 4 for layer in on_disk]
    assert memory.offload_write_bytes(layers) == {str(folder): sum(sizes) + max(sizes)}
    monkeypatch.setattr(memory, "_free_disk_bytes", lambda _folder: 1000)
    before = _weights(model)
    with pytest.raises(OSError, match=rf"\({sum(sizes) + max(sizes)} bytes\) of pruned weights into the offload "
                                      r"folder .* only 0\.000 GiB \(1000 bytes\) is free"):
        SinkAwarePruner(model).prune(SinkAwarePruningConfig(method="wanda", **SMALL), _ids(), progress=False)
    _assert_same_weights(_weights(model), before)
    assert not any(f.endswith(".dat") for f in os.listdir(folder))


def test_nan_in_a_disk_offloaded_weight_is_named_before_any_change(checkpoint, tmp_path):
    """The finite-weights check reads offloaded weights from the offload folder too (they are meta on the module)."""
    from accelerate import dispatch_model

    from optimum_sinkprune.validation import NonFiniteWeightsError

    model = load_model(checkpoint, dtype="float32")
    with torch.no_grad():
        model.get_submodule(f"{BLOCKS}.3.q_proj").weight[0, 0] = float("nan")
    model = dispatch_model(model, device_map=CPU_DISK, offload_dir=str(tmp_path / "dat"))
    assert model.get_submodule(f"{BLOCKS}.3.q_proj").weight.is_meta
    before = sorted(os.listdir(tmp_path / "dat"))
    pruner = SinkAwarePruner(model)
    with pytest.raises(NonFiniteWeightsError, match=rf"'{BLOCKS}\.3\.q_proj\.weight'.*1 NaN"):
        pruner.prune(SinkAwarePruningConfig(method="wanda", sparsity=0.5, num_samples=2, seq_len=16), progress=False)
    assert sorted(os.listdir(tmp_path / "dat")) == before


def test_offload_sources_name_the_offload_folder_and_the_checkpoint_read_in_place(checkpoint, tmp_path):
    from accelerate import cpu_offload

    from optimum_sinkprune.offload import offload_sources

    assert offload_sources(load_model(checkpoint, dtype="float32")) == []
    assert offload_sources(cpu_offload(load_model(checkpoint, dtype="float32"))) == []  # held in memory
    pruner = SinkAwarePruner.from_pretrained(checkpoint, dtype="float32", device_map=CPU_DISK,
                                             offload_folder=str(tmp_path / "offload"))
    # transformers offloads from the checkpoint file in place; the pruned weights go to the folder
    assert offload_sources(pruner.model) == sorted([str(tmp_path / "offload"), str(checkpoint / "model.safetensors")])


@pytest.mark.parametrize("folder", ["beside", "inside"])
def test_saving_over_the_files_offloaded_weights_are_read_from_is_refused(checkpoint, tmp_path, monkeypatch, folder):
    """Saving replaces the destination folder and deletes the old one: a folder holding the checkpoint file the disk
    blocks are read from, or the offload folder with their pruned `.dat` files, would be deleted from under the model.
    Refused before any weight or file changes; saved elsewhere, the model is intact."""
    offload = checkpoint / "offload" if folder == "inside" else tmp_path / "offload"
    pruner = SinkAwarePruner.from_pretrained(checkpoint, dtype="float32", device_map=CPU_DISK,
                                             offload_folder=str(offload))
    config = SinkAwarePruningConfig(method="wanda", **SMALL)
    files, digest = sorted(os.listdir(checkpoint)), _sha(checkpoint / "model.safetensors")
    dense = _weights(pruner.model)
    with pytest.raises(ValueError, match=rf"save_dir='{checkpoint}' holds files this model reads its "
                                         rf"disk-offloaded weights from .*'{checkpoint}/model\.safetensors'"):
        pruner.prune(config, _ids(), save_dir=checkpoint, progress=False)
    _assert_same_weights(_weights(pruner.model), dense)  # refused before any weight changed

    pruner.prune(config, _ids(), progress=False)
    ids = _ids(2, 16, seed=3)
    logits = _logits(pruner.model, ids)
    with pytest.raises(ValueError, match=r"saving there would replace the folder and delete them\. Save to another"):
        pruner.save_pretrained(checkpoint, overwrite=True)
    monkeypatch.chdir(checkpoint.parent)  # the same folder by a relative name with a detour
    with pytest.raises(ValueError, match=r"holds files this model reads its disk-offloaded weights from"):
        pruner.save_pretrained(f"{checkpoint.name}/../{checkpoint.name}", overwrite=True)
    assert sorted(os.listdir(checkpoint)) == files and _sha(checkpoint / "model.safetensors") == digest
    assert torch.equal(_logits(pruner.model, ids), logits)  # it still reads its weights
    pruner.save_pretrained(tmp_path / "pruned")
    assert torch.equal(_logits(pruner.model, ids), logits)
    torch.testing.assert_close(_logits(load_model(tmp_path / "pruned", dtype="float32"), ids), logits,
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", ["sink_heads", "magnitude_heads", "activation_heads"])
def test_structured_methods_refuse_offloaded_blocks_by_name(checkpoint, tmp_path, method):
    """Removal changes parameter shapes, which accelerate's offload maps hold at their loaded shapes: refused before
    any calibration or change, naming the offloaded blocks."""
    pruner = SinkAwarePruner.from_pretrained(checkpoint, dtype="float32", device_map=CPU_DISK,
                                             offload_folder=str(tmp_path / "offload"))
    dense = _weights(pruner.model)
    config = SinkAwarePruningConfig(method=method, target_param_reduction=0.2, num_samples=3, seq_len=16,
                                    diffusion_steps=10, sample_interval=5)
    with pytest.raises(ValueError, match=rf"method='{method}' removes parameters and changes layer shapes.* but "
                                         rf"'{BLOCKS}\.1', '{BLOCKS}\.3' are offloaded"):
        pruner.prune(config, _ids(), progress=False)
    _assert_same_weights(_weights(pruner.model), dense)
    assert not (tmp_path / "offload").exists() or not any((tmp_path / "offload").iterdir())


def test_attention_mass_of_a_model_with_its_embedding_on_disk(checkpoint, tmp_path):
    """The ids go to the embedding's execution device (its weight is meta on the module), and the mass equals the
    in-memory model's."""
    from accelerate import dispatch_model

    from optimum_sinkprune.calibration.attention import attention_mass

    ids = torch.randint(0, 100, (1, 16), generator=torch.Generator().manual_seed(0))
    expected = attention_mass(load_model(checkpoint, dtype="float32"), ids)
    placement = {**CPU_DISK, "model.transformer.wte": "disk"}
    model = dispatch_model(load_model(checkpoint, dtype="float32"), device_map=placement,
                           offload_dir=str(tmp_path / "dat"))
    assert model.get_input_embeddings().weight.is_meta
    assert torch.allclose(attention_mass(model, ids), expected, atol=1e-6)


def test_sampler_likelihood_and_sink_trajectory_of_a_model_with_its_embedding_offloaded(checkpoint):
    """Token ids go to the embedding's execution device (`offload.input_device`), not to its meta weight: the same
    text, ELBO and attention mass as in memory."""
    from accelerate import cpu_offload

    from optimum_sinkprune.analysis.trajectory import forward_process_trajectory
    from optimum_sinkprune.diffusion import generate
    from optimum_sinkprune.diffusion.likelihood import elbo_log_likelihood
    from optimum_sinkprune.offload import input_device

    dense = load_model(checkpoint, dtype="float32")
    model = cpu_offload(load_model(checkpoint, dtype="float32"), execution_device=torch.device("cpu"))
    assert model.get_input_embeddings().weight.is_meta and input_device(model) == torch.device("cpu")
    prompt = _ids(1, 8, seed=4)
    kwargs = dict(steps=4, gen_length=8, block_length=8, mask_token_id=dense.config.mask_token_id)
    assert torch.equal(generate(model, prompt, **kwargs).sequences, generate(dense, prompt, **kwargs).sequences)
    ids = _ids(2, 16, seed=5)
    elbo = dict(mc_num=4, batch_size=2, seed=1)
    assert elbo_log_likelihood(model, ids, **elbo).nll_per_token == pytest.approx(
        elbo_log_likelihood(dense, ids, **elbo).nll_per_token, abs=1e-6)
    trajectory = dict(steps=10, sample_interval=5, seed=0, progress=False)
    torch.testing.assert_close(forward_process_trajectory(model, ids, **trajectory).mass,
                               forward_process_trajectory(dense, ids, **trajectory).mass, rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------------------------------------
# quantizing and compressed saving of offloaded models
# ------------------------------------------------------------------------------------------------------------------
def _file_bytes(folder) -> bytes:
    return (folder / "model.safetensors").read_bytes()


@pytest.mark.parametrize("method", ["rtn", "gptq", "sink_gptq"])
def test_offloaded_model_quantizes_and_saves_like_memory(checkpoint, tmp_path, method):
    """Quantizing a model with blocks on disk gives the in-memory weights, and its quantized checkpoint is the same
    file byte for byte (offloaded tensors are read where they live, one at a time)."""
    from optimum_sinkprune import QuantizationConfig, SinkAwareQuantizer

    config = QuantizationConfig(method=method, bits=4, group_size=32, num_samples=3, seq_len=16)
    dense = SinkAwareQuantizer(load_model(checkpoint, dtype="float32"))
    dense.quantize(config, _ids(), progress=False)
    offloaded = SinkAwarePruner.from_pretrained(checkpoint, dtype="float32", device_map=CPU_DISK,
                                                offload_folder=str(tmp_path / "offload"))
    assert offloaded.model.get_submodule(f"{BLOCKS}.1.q_proj").weight.is_meta
    quantizer = SinkAwareQuantizer(offloaded.model)
    _, report = quantizer.quantize(config, _ids(), progress=False)
    _assert_same_weights(_weights(offloaded.model), _weights(dense.model))
    assert report.zero_fraction == dense.report.zero_fraction
    quantizer.save_pretrained(tmp_path / "offloaded")
    dense.save_pretrained(tmp_path / "memory")
    assert _file_bytes(tmp_path / "offloaded") == _file_bytes(tmp_path / "memory")


def test_offloaded_pruned_model_saves_compressed_like_memory(checkpoint, tmp_path):
    """The sparse (bitmask) checkpoint of a pruned model with blocks on disk: the norms of the disk blocks are read
    from the offload folder, and the file is the in-memory model's byte for byte."""
    config = SinkAwarePruningConfig(method="wanda", **SMALL)
    dense = SinkAwarePruner(load_model(checkpoint, dtype="float32"))
    dense.prune(config, _ids(), progress=False)
    offloaded = SinkAwarePruner.from_pretrained(checkpoint, dtype="float32", device_map=CPU_DISK,
                                                offload_folder=str(tmp_path / "offload"))
    assert offloaded.model.get_submodule(f"{BLOCKS}.3.attn_norm").weight.is_meta
    offloaded.prune(config, _ids(), progress=False)
    offloaded.save_pretrained(tmp_path / "offloaded", save_format="compressed")
    dense.save_pretrained(tmp_path / "memory", save_format="compressed")
    assert _file_bytes(tmp_path / "offloaded") == _file_bytes(tmp_path / "memory")
