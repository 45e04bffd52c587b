# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Saving and publishing pruned checkpoints: atomic `save_pruned_model`, generated model cards, `push_to_hub`."""

from .model_card import build_model_card, default_template_path
from .push import (
    HubPushError,
    MissingTokenError,
    push_pruned_model,
    push_to_hub,
    validate_checkpoint_folder,
    validate_repo_id,
)
from .save import SaveInterrupted, SaveRecovery, check_save_directory, recover_interrupted_save, save_pruned_model

__all__ = [
    "HubPushError",
    "MissingTokenError",
    "SaveInterrupted",
    "SaveRecovery",
    "build_model_card",
    "check_save_directory",
    "default_template_path",
    "push_pruned_model",
    "push_to_hub",
    "recover_interrupted_save",
    "save_pruned_model",
    "validate_checkpoint_folder",
    "validate_repo_id",
]
