"""A policy loaded for evaluation only: the engine's model loading, prompt encoding,
generation and reward scoring (``engine.policy.PolicyIO``), without an optimiser or
training data."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoConfig

from openvlthinker.engine.config import TrainConfig
from openvlthinker.engine.modeling import load_policy, load_processor
from openvlthinker.engine.phases import score_rollout
from openvlthinker.engine.policy import PolicyIO
from openvlthinker.engine.setup import DTYPES, resolve_device
from openvlthinker.engine.validation import PolicyCalls, policy_calls
from openvlthinker.rewards import RewardConfig
from openvlthinker.tasks import TaskRegistry


class EvalPolicy:
    """The model at ``model_path`` with the config's processor, image limits, prompt
    template, tags and generation settings (``rollout.max_new_tokens``, ``top_p``, ``top_k``)."""

    def __init__(
        self,
        cfg: TrainConfig,
        model_path: str | Path,
        registry: TaskRegistry,
        reward_config: RewardConfig,
    ):
        self.cfg, self.registry, self.reward_config = cfg, registry, reward_config
        self.device = resolve_device(cfg.model.device)
        self.dtype = DTYPES[cfg.model.dtype]
        model_type = AutoConfig.from_pretrained(model_path).model_type
        self.processor = load_processor(
            str(model_path), model_type, cfg.model.min_pixels, cfg.model.max_pixels
        )
        self.tokenizer = self.processor.tokenizer
        self.policy = load_policy(
            str(model_path), self.dtype, self.device, cfg.model.attn_implementation
        ).eval()
        self.io = PolicyIO.from_config(
            cfg, self.processor, self.policy, reward_config, self.device, self.dtype
        )

    def calls(self, temperature: float) -> PolicyCalls:
        """encode / generate (greedy at temperature 0) / score / decode, as in training."""

        def score(rollout, records, sizes):
            return score_rollout(
                self.io, rollout, records, sizes, self.registry, self.reward_config
            )

        return policy_calls(self.io, self.policy, temperature, score)

    def prompt_text(self, record) -> str:
        """The record's prompt text as the model is asked it (placeholders kept)."""
        from openvlthinker.data.prompts import DEFAULT_TEMPLATE, render_prompt

        return render_prompt(
            record,
            self.cfg.data.template or DEFAULT_TEMPLATE,
            think_tag=self.reward_config.think_tag,
            answer_tag=self.reward_config.answer_tag,
            coordinate_frame=self.reward_config.coordinate_frame,
        )
