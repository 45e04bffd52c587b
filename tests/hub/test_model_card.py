# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
import math
from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard

import optimum_sinkprune
from optimum_sinkprune.hub import build_model_card, default_template_path
from optimum_sinkprune.registry import get_method, method_names

from .conftest import PRUNING_CONFIG

# method -> (display name, summary, equation), from the registry
METHODS = {name: (get_method(name).card.name, get_method(name).card.summary, get_method(name).card.equation)
           for name in method_names()}

REPORT = {"params_before": 200_000, "params_after": 200_000, "nonzero_params_before": 200_000,
          "nonzero_params_after": 100_000, "checkpoint_bytes_before": 800_000, "checkpoint_bytes_after": 800_000}


def front_matter(text: str) -> dict:
    """The YAML metadata block, parsed independently of huggingface_hub."""
    assert text.startswith("---\n")
    end = text.index("\n---\n", 4)
    return yaml.safe_load(text[4:end])


def card(**overrides):
    kwargs = dict(pruning_config=PRUNING_CONFIG, report=REPORT, base_model="GSAI-ML/LLaDA-8B-Base")
    kwargs.update(overrides)
    return build_model_card(**kwargs)


def test_metadata_is_valid_yaml_and_loads(tmp_path):
    evals = {"perplexity": {"pruned": 25.5, "base": 20.0, "dataset": "held-out split"},
             "masked_accuracy": {"pruned": 0.41, "base": 0.44, "dataset": "held-out split"}}
    c = card(eval_results=evals, license="apache-2.0")
    meta = front_matter(str(c))
    assert meta["base_model"] == "GSAI-ML/LLaDA-8B-Base"
    assert meta["library_name"] == "transformers"
    assert meta["pipeline_tag"] == "text-generation"
    assert meta["license"] == "apache-2.0"
    assert set(meta["tags"]) >= {"sink-aware-pruning", "pruned", "diffusion-language-model", "optimum-sinkprune",
                                 "sink-wanda"}
    assert "base_model_relation" not in meta  # the Hub has no relation for pruning
    # model-index has exactly the measured numbers of the pruned model
    metrics = {m["type"]: m["value"] for r in meta["model-index"][0]["results"] for m in r["metrics"]}
    assert metrics == {"perplexity": 25.5, "masked_accuracy": 0.41}

    path = tmp_path / "README.md"
    c.save(path)
    loaded = ModelCard.load(path)
    assert loaded.data.base_model == "GSAI-ML/LLaDA-8B-Base"
    assert {e.metric_type: e.metric_value for e in loaded.data.eval_results} == metrics
    assert "tokens/s" in loaded.text.split("Not measured for this checkpoint:")[1].split("\n")[0]


def test_body_sections():
    text = card(eval_results={"perplexity": {"pruned": 30.0, "base": 20.0}}, sink_plot="plots/sink_dynamics.png",
                reproduce_command="sinkprune prune GSAI-ML/LLaDA-8B-Base --method sink_wanda --sparsity 0.5").text
    for needle in ("## How it was pruned", "Sink-Aware Wanda", "sigmoid", "### Calibration data", "`num_samples`: 4",
                   "### Hyper-parameters", "`sink_alpha`", "## Size", "## Quality and speed vs the base model",
                   "![Attention-sink dynamics", "(plots/sink_dynamics.png)", "trust_remote_code=True",
                   "import optimum_sinkprune", "## Reproduce", "--method sink_wanda --sparsity 0.5", "## Limitations",
                   "arXiv:2602.17664", "Sink-Aware Pruning for Diffusion Language Models", "Myrzakhan"):
        assert needle in text, needle
    # size table: ratio of non-zero parameters computed from the report
    assert "| Non-zero parameters | 200.00K (200,000) | 100.00K (100,000) | 0.500× |" in text
    # quality ratio base -> pruned
    assert "| 20 | 30 | 1.500× |" in text


def test_only_measured_numbers():
    text = str(card(report=None, eval_results=None))
    meta = front_matter(text)
    assert "model-index" not in meta
    assert "not measured" in text
    assert "Not measured for this checkpoint: ELBO perplexity bound (lower is better), masked-token accuracy, generation " \
           "speed (tokens/s)" in text
    # a NaN is not a measurement
    meta = front_matter(str(card(eval_results={"perplexity": math.nan, "masked_accuracy": 0.5})))
    metrics = {m["type"] for r in meta["model-index"][0]["results"] for m in r["metrics"]}
    assert metrics == {"masked_accuracy"}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_has_its_equation(method):
    text = str(card(pruning_config={**PRUNING_CONFIG, "method": method}))
    name, _, equation = METHODS[method]
    assert name in text and (equation is None or equation in text)
    assert method.replace("_", "-") in front_matter(text)["tags"]


def test_unknown_method_and_local_base_model(tmp_path):
    text = str(card(pruning_config={"method": "my_method", "sparsity": 0.3}, base_model=str(tmp_path)))
    meta = front_matter(text)
    assert "base_model" not in meta
    assert str(tmp_path) not in text
    assert "sink_pruning_config" in text


def test_tokens_never_appear():
    secret = "hf_SuperSecretToken0123456789"
    text = str(card(reproduce_command=f"HF_TOKEN={secret} sinkprune prune m --token {secret} --method x",
                    pruning_config={**PRUNING_CONFIG, "note": f"token='{secret}'"}))
    assert secret not in text
    assert "SuperSecret" not in text


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"pruning_config": {"sparsity": 0.5}}, "'method'"),
        ({"sink_plot": "/abs/plot.png"}, "relative"),
        ({"eval_results": {"perplexity": "low"}}, "must be a number"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        card(**kwargs)


def test_template_ships_inside_the_package():
    template = Path(default_template_path())
    package_dir = Path(optimum_sinkprune.__file__).parent
    assert template.is_file() and template.suffix == ".jinja"
    assert package_dir in template.parents
    # pyproject ships *.jinja as package data; the top-level model_cards/ folder points here
    repo = package_dir.parent
    if (repo / "pyproject.toml").is_file():
        assert '"*.jinja"' in (repo / "pyproject.toml").read_text()
        assert template.relative_to(repo).as_posix() in (repo / "model_cards" / "README.md").read_text()


def _config(method, **kw):
    from optimum_sinkprune import SinkAwarePruningConfig

    return SinkAwarePruningConfig(method=method, **kw).to_dict()


def test_only_the_hyperparameters_of_the_method_used():
    heads = str(card(pruning_config=_config("sink_heads", target_param_reduction=0.38))).split("## Size")[0]
    wanda = str(card(pruning_config=_config("sink_wanda", sparsity=0.5))).split("## Size")[0]
    assert "`instability_weight`" in heads and "`sparsity`" not in heads and "`pattern`" not in heads
    assert "`sparsity`" in wanda and "`instability_weight`" not in wanda and "`structured_mode`" not in wanda
    assert "`dampening`" not in wanda  # SparseGPT's knob; sink_wanda does not reconstruct
    magnitude = str(card(pruning_config=_config("magnitude", sparsity=0.5))).split("## Size")[0]
    assert "`diffusion_steps`" not in magnitude and "`num_samples`" not in magnitude


def test_metadata_follows_the_hub_conventions():
    evals = {"perplexity": {"pruned": 78.48584445054647, "base": 70.1, "dataset": "held-out split"},
             "tokens_per_second": {"pruned": 301.23456, "dataset": "held-out prompts", "unit": "tokens/s"},
             "latency_per_step": {"pruned": 5.4321, "dataset": "held-out prompts", "unit": "ms"}}
    c = card(pruning_config=_config("sink_wanda", sparsity=0.5, pattern="2:4"), eval_results=evals,
             base_model="tiny-llada",
             history=[{"method": "sink_wanda", "base_model": "tiny-llada", "calibration_data": "Salesforce/wikitext",
                       "optimum_sinkprune": "0.1"}])
    meta = front_matter(str(c))
    assert meta["base_model"] == "tiny-llada"  # the embedded name when the model is not from the Hub
    assert meta["datasets"] == ["Salesforce/wikitext"]
    assert {"pruned", "sparse", "2:4", "diffusion-language-model"} <= set(meta["tags"])
    assert "base_model_relation" not in meta
    results = meta["model-index"][0]["results"]
    values = {m["type"]: m["value"] for r in results for m in r["metrics"]}
    assert values == {"perplexity": 78.49, "tokens_per_second": 301.2, "latency_per_step": 5.432}
    assert all("/" in r["dataset"]["type"] and " " not in r["dataset"]["type"] for r in results)
    names = [m["name"] for r in results for m in r["metrics"]]
    assert "generation speed (tokens/s)" in names and "latency per denoising step (ms)" in names
    text = str(c)
    assert "(tokens/s) (tokens/s)" not in text and "(ELBO bound)" not in text


def test_reproduce_command_is_portable_and_the_same_for_api_and_cli(tmp_path):
    from optimum_sinkprune import assets
    from optimum_sinkprune.hub.model_card import prune_command

    config = _config("sink_wanda", sparsity=0.5)
    from_path = prune_command(config, assets.default_model_path())
    assert from_path == prune_command(config, "tiny-llada")  # the embedded folder is named by its name
    assert from_path.startswith("sinkprune prune tiny-llada --method sink_wanda --sparsity 0.5")
    data = tmp_path / "my texts.jsonl"
    data.write_text('{"text": "a"}\n')
    command = prune_command(config, str(tmp_path / "model"), data=str(data))
    assert str(tmp_path) not in command and "--data 'my texts.jsonl'" in command
    api = str(card(pruning_config=config, base_model=assets.default_model_path())).split("## Reproduce")[1]
    assert from_path in api and assets.ASSETS_DIR not in api


def test_history_of_several_steps_is_listed():
    history = [{"method": "sink_wanda", "base_model": "tiny-llada", "calibration_data": "16 texts",
                "optimum_sinkprune": "0.1"},
               {"method": "sink_heads", "base_model": "tiny-llada", "calibration_data": "16 texts",
                "optimum_sinkprune": "0.1"}]
    text = str(card(pruning_config=_config("sink_heads", target_param_reduction=0.38), history=history))
    assert "the last of\n2 pruning steps" in text and "starting from the dense model" not in text
    assert "| 1 | `sink_wanda` | tiny-llada | 16 texts | 0.1 |" in text
