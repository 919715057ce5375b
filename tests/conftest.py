"""Shared test settings: never reach a model hub, keep runs deterministic."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory) -> str:
    """One folder for the tiny checkpoints the tests build (each built once per session)."""
    return str(tmp_path_factory.mktemp("tiny_models"))
