"""How the engine talks to a policy model: records in as prompts, sampled responses out,
their decoded text, and the per-token log-probs of a rollout under any model (the policy,
its reference, a merged copy), with the same suppression mask and temperature sampling used.

:class:`PolicyIO` holds the processor and the settings, never the model: a step passes
the model it means, and a resumed run swaps the policy without rebuilding this.
Training, validation, calibration and ``openvlthinker eval`` all go through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from openvlthinker.data import Record
from openvlthinker.engine.config import TrainConfig
from openvlthinker.engine.data import EncodedPrompts, encode_records
from openvlthinker.engine.logprob import TokenLogProbs, token_log_probs
from openvlthinker.engine.modeling import never_sampled_ids
from openvlthinker.engine.rollout import PromptBatch, Rollout, generate
from openvlthinker.rewards import RewardConfig

if TYPE_CHECKING:
    from transformers import PreTrainedModel, ProcessorMixin


@dataclass(frozen=True)
class PromptSettings:
    """How records become prompts: template (None: the default), image pixel limits and
    patch factor, prompt length cap, and the tag / coordinate options of the messages."""

    template: str | None
    min_pixels: int
    max_pixels: int
    factor: int
    max_prompt_length: int
    message_options: Mapping[str, Any]


@dataclass(frozen=True)
class SamplingSettings:
    """What every generate call shares: the response cap, nucleus / top-k (``rollout``),
    the token ids never sampled (vision specials), the EOS ids and the pad id; and the
    training temperature and entropy estimator that log-probs are recomputed with."""

    max_new_tokens: int
    top_p: float
    top_k: int
    suppress_ids: tuple[int, ...]
    eos_ids: tuple[int, ...]
    pad_id: int
    temperature: float
    entropy_estimator: str


def generation_eos_ids(model: PreTrainedModel, tokenizer: Any) -> tuple[int, ...]:
    """The tokenizer's EOS and the model's generation-config EOS ids, sorted."""
    eos = model.generation_config.eos_token_id
    extra = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
    return tuple(sorted({tokenizer.eos_token_id, *extra}))


class PolicyIO:
    """Prompts, sampling, decoding and token log-probs for ``processor``'s models."""

    def __init__(
        self,
        processor: ProcessorMixin,
        prompts: PromptSettings,
        sampling: SamplingSettings,
        device: torch.device,
        dtype: torch.dtype,
    ):
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.prompts = prompts
        self.sampling = sampling
        self.device = device
        self.dtype = dtype

    @classmethod
    def from_config(
        cls,
        cfg: TrainConfig,
        processor: ProcessorMixin,
        model: PreTrainedModel,
        reward_config: RewardConfig,
        device: torch.device,
        dtype: torch.dtype,
    ) -> PolicyIO:
        """The settings of ``cfg`` (data, model pixels, rollout, entropy estimator) and the
        reward config's tags; ``model`` gives the vocabulary size and generation EOS."""
        ip = processor.image_processor
        tokenizer = processor.tokenizer
        vocab = model.get_output_embeddings().weight.shape[0]
        prompts = PromptSettings(
            template=cfg.data.template,
            min_pixels=cfg.model.min_pixels,
            max_pixels=cfg.model.max_pixels,
            factor=int(ip.patch_size * ip.merge_size),
            max_prompt_length=cfg.data.max_prompt_length,
            message_options=reward_config.prompt_options,
        )
        r = cfg.rollout
        sampling = SamplingSettings(
            max_new_tokens=r.max_new_tokens,
            top_p=r.top_p,
            top_k=r.top_k,
            suppress_ids=tuple(never_sampled_ids(tokenizer, vocab)),
            eos_ids=generation_eos_ids(model, tokenizer),
            pad_id=tokenizer.pad_token_id,
            temperature=r.temperature,
            entropy_estimator=cfg.actor.entropy_band.estimator,
        )
        return cls(processor, prompts, sampling, device, dtype)

    @property
    def pad_id(self) -> int:
        return self.sampling.pad_id

    def encode(self, records: list[Record]) -> EncodedPrompts:
        """The records' chat prompts with their resized images, left padded."""
        p = self.prompts
        return encode_records(
            records,
            self.processor,
            template=p.template,
            min_pixels=p.min_pixels,
            max_pixels=p.max_pixels,
            factor=p.factor,
            max_prompt_length=p.max_prompt_length,
            message_options=dict(p.message_options),
        )

    def generate(
        self,
        model: PreTrainedModel,
        prompts: PromptBatch,
        *,
        temperature: float,
        greedy: bool,
        return_log_probs: bool = False,
    ) -> Rollout:
        """One response per prompt row (greedy, or sampled at ``temperature``)."""
        s = self.sampling
        model.eval()
        return generate(
            model,
            prompts.to(self.device, self.dtype),
            max_new_tokens=s.max_new_tokens,
            temperature=temperature,
            top_p=s.top_p,
            top_k=s.top_k,
            do_sample=not greedy,
            suppress_ids=list(s.suppress_ids),
            eos_ids=list(s.eos_ids),
            pad_id=s.pad_id,
            return_log_probs=return_log_probs,
        )

    def decode(self, rollout: Rollout) -> list[str]:
        return self.tokenizer.batch_decode(rollout.responses.cpu(), skip_special_tokens=True)

    def log_probs(
        self,
        model: PreTrainedModel,
        rollout: Rollout,
        *,
        with_grad: bool = False,
        entropy: bool = True,
    ) -> TokenLogProbs:
        """Log-probs (B, T) of the rollout's tokens under ``model`` at the training
        temperature, and (``entropy``) their token entropy by the configured estimator."""
        s = self.sampling
        with torch.set_grad_enabled(with_grad):
            return token_log_probs(
                model,
                rollout,
                suppress_ids=list(s.suppress_ids),
                temperature=s.temperature,
                entropy=s.entropy_estimator if entropy else None,
            )
