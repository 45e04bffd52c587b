# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
import math
from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard

import optimum_sinkprune
from optimum_sinkprune.hub import build_model_card, default_template_path
from optimum_sinkprune.hub.model_card import METHODS

from .conftest import PRUNING_CONFIG

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
    assert "Not measured for this checkpoint: ELBO perplexity (lower is better), masked-token accuracy, generation " \
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
