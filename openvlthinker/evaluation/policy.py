"""A policy loaded for evaluation only: the engine's model loading, prompt encoding,
generation and reward scoring, without an optimiser or training data."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig

from openvlthinker.engine.config import TrainConfig
from openvlthinker.engine.data import encode_records
from openvlthinker.engine.modeling import load_policy, load_processor, never_sampled_ids
from openvlthinker.engine.rollout import generate
from openvlthinker.engine.trainer import _DTYPES, resolve_device
from openvlthinker.engine.validation import PolicyCalls
from openvlthinker.rewards import RewardConfig, score_batch
from openvlthinker.step import record_reward_items
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
        self.dtype = _DTYPES[cfg.model.dtype]
        model_type = AutoConfig.from_pretrained(model_path).model_type
        self.processor = load_processor(
            str(model_path), model_type, cfg.model.min_pixels, cfg.model.max_pixels
        )
        self.tokenizer = self.processor.tokenizer
        ip = self.processor.image_processor
        self.image_factor = int(ip.patch_size * ip.merge_size)
        self.policy = load_policy(
            str(model_path), self.dtype, self.device, cfg.model.attn_implementation
        ).eval()
        vocab = self.policy.get_output_embeddings().weight.shape[0]
        self.suppress_ids = never_sampled_ids(self.tokenizer, vocab)
        eos = self.policy.generation_config.eos_token_id
        eos = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
        self.eos_ids = sorted({self.tokenizer.eos_token_id, *eos})

    def calls(self, temperature: float) -> PolicyCalls:
        """encode / generate (greedy at temperature 0) / score / decode, as in training."""
        cfg, r = self.cfg, self.cfg.rollout

        def encode(records):
            return encode_records(
                records,
                self.processor,
                template=cfg.data.template,
                min_pixels=cfg.model.min_pixels,
                max_pixels=cfg.model.max_pixels,
                factor=self.image_factor,
                max_prompt_length=cfg.data.max_prompt_length,
                message_options=self.reward_config.prompt_options,
            )

        @torch.no_grad()
        def gen(batch):
            return generate(
                self.policy,
                batch.to(self.device, self.dtype),
                max_new_tokens=r.max_new_tokens,
                temperature=temperature or 1.0,
                top_p=r.top_p,
                top_k=r.top_k,
                do_sample=temperature > 0,
                suppress_ids=self.suppress_ids,
                eos_ids=self.eos_ids,
                pad_id=self.tokenizer.pad_token_id,
            )

        def decode(rollout):
            return self.tokenizer.batch_decode(rollout.responses.cpu(), skip_special_tokens=True)

        def score(rollout, records, sizes):
            lengths = rollout.response_lengths().cpu().tolist()
            items = record_reward_items(decode(rollout), lengths, records, sizes, self.registry)
            return score_batch(items, config=self.reward_config)

        return PolicyCalls(encode=encode, generate=gen, score=score, decode=decode)

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
