# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The command line's surface: help texts, defaults, flags, model arguments that cannot load."""

from __future__ import annotations

import pytest

from optimum_sinkprune.commands.cli import main


def _help(capsys, *argv) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def test_demo_help_prints_percent_signs_once(capsys):
    text = " ".join(_help(capsys, "demo").split())
    assert "sink_wanda (50%)" in text and "38% of block parameters" in text and "%%" not in text
    assert "%%" not in _help(capsys)


def test_prune_help_shows_defaults_and_the_flags(capsys):
    text = " ".join(_help(capsys, "prune").split())
    assert "(default: 0.5)" in text and "(default: unstructured)" in text and "(default: sink_wanda)" in text
    assert "(default: None)" not in text and "(default: False)" not in text
    for flag in ("--trust-remote-code", "--no-progress", "--evaluate"):
        assert flag in text
    assert "embedded model name" in text  # embedded names are accepted


@pytest.mark.parametrize("command", [["analyze", "--output", "o"], ["prune", "--output", "o"], ["eval"],
                                     ["demo", "--output", "o", "--model"]])
def test_a_model_that_is_nowhere_is_one_clear_line(command, capsys, monkeypatch, tmp_path):
    import huggingface_hub

    def unreachable(*args, **kwargs):
        raise ConnectionError("no network")

    class Session:
        head = staticmethod(unreachable)

    monkeypatch.setattr(huggingface_hub, "get_session", lambda: Session())
    monkeypatch.chdir(tmp_path)
    argv = [*command, "no-such-user/no-such-model"] if command[-1] == "--model" else \
        [command[0], "no-such-user/no-such-model", *command[1:]]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    from optimum_sinkprune.assets import EMBEDDED_MODELS

    embedded = ", ".join(sorted(EMBEDDED_MODELS))  # every embedded model is named
    assert f"'no-such-user/no-such-model' is neither a local folder nor an embedded model ({embedded})" in err
    assert "tiny-llada" in embedded and "cannot be reached" in err
    assert not (tmp_path / "o").exists()


def test_a_name_that_cannot_be_a_hub_id(capsys):
    assert main(["analyze", "no such model!", "--output", "o"]) == 2
    err = capsys.readouterr().err
    assert "not a valid Hub id" in err and "tiny-llada" in err
