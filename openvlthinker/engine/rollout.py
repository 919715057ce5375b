"""Rollout: encode prompts with images, repeat each prompt n times, sample with HF generate.

The batch keeps per-sample row ranges into ``pixel_values`` and ``image_grid_thw`` so any
subset of samples (a repeated group, a micro-batch) can be gathered without loops.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from transformers import PreTrainedModel, ProcessorMixin


def gather_ranges(starts: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Concatenate ``arange(s, s + c)`` for each (s, c) pair: (N,), (N,) -> (sum c,)."""
    counts = counts.long()
    total = int(counts.sum())
    if total == 0:
        return torch.zeros(0, dtype=torch.long)
    offsets = torch.cumsum(counts, 0) - counts
    owner = torch.repeat_interleave(torch.arange(counts.numel()), counts)
    return starts.long()[owner] + torch.arange(total) - offsets[owner]


@dataclass
class PromptBatch:
    """Encoded prompts, left padded. P prompts, Lp prompt length.

    input_ids, attention_mask, mm_token_type_ids: (P, Lp); pixel_values: (sum patches, D)
    or None; image_grid_thw: (num images, 3) or None; image_count: (P,) images per prompt.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    mm_token_type_ids: torch.Tensor
    pixel_values: torch.Tensor | None
    image_grid_thw: torch.Tensor | None
    image_count: torch.Tensor

    @property
    def size(self) -> int:
        return self.input_ids.shape[0]

    def _image_ranges(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-sample (first image, image count, first patch row, patch rows)."""
        img_start = torch.cumsum(self.image_count, 0) - self.image_count
        if self.image_grid_thw is None or self.image_grid_thw.numel() == 0:
            zeros = torch.zeros_like(self.image_count)
            return img_start, self.image_count, zeros, zeros
        rows_per_image = self.image_grid_thw.prod(dim=-1)
        sample_of_image = torch.repeat_interleave(torch.arange(self.size), self.image_count.long())
        rows = torch.zeros(self.size, dtype=torch.long).index_add(
            0, sample_of_image, rows_per_image.long()
        )
        return img_start, self.image_count, torch.cumsum(rows, 0) - rows, rows

    def select(self, index: torch.Tensor) -> PromptBatch:
        """Samples ``index`` (any order, repeats allowed), vision rows reordered to match.

        Index bookkeeping stays on the CPU (a CPU index may address tensors on any device).
        """
        index = index.long().cpu()
        img_start, img_count, row_start, row_count = self._image_ranges()
        pixel_values = grid = None
        if self.pixel_values is not None and int(img_count[index].sum()) > 0:
            pixel_values = self.pixel_values[gather_ranges(row_start[index], row_count[index])]
            grid = self.image_grid_thw[gather_ranges(img_start[index], img_count[index])]
        return PromptBatch(
            input_ids=self.input_ids[index],
            attention_mask=self.attention_mask[index],
            mm_token_type_ids=self.mm_token_type_ids[index],
            pixel_values=pixel_values,
            image_grid_thw=grid,
            image_count=self.image_count[index],
        )

    def repeat(self, n: int) -> PromptBatch:
        """Each prompt n times in a row (a prompt group): P -> P * n samples."""
        return self.select(torch.repeat_interleave(torch.arange(self.size), n))

    def vision_inputs(self) -> dict[str, torch.Tensor]:
        if self.pixel_values is None:
            return {}
        return {"pixel_values": self.pixel_values, "image_grid_thw": self.image_grid_thw}

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> PromptBatch:
        pv = self.pixel_values
        if pv is not None:
            pv = pv.to(device=device, dtype=dtype or pv.dtype)
        return replace(
            self,
            input_ids=self.input_ids.to(device),
            attention_mask=self.attention_mask.to(device),
            mm_token_type_ids=self.mm_token_type_ids.to(device),
            pixel_values=pv,
            image_grid_thw=None if self.image_grid_thw is None else self.image_grid_thw.to(device),
        )


def encode_prompts(
    processor: ProcessorMixin, messages: list[list[dict]], images: list[list[Any]]
) -> PromptBatch:
    """Chat-template and process P conversations (their images in order) into a PromptBatch."""
    texts = [
        processor.apply_chat_template(m, add_generation_prompt=True, tokenize=False)
        for m in messages
    ]
    flat_images = [img for imgs in images for img in imgs]
    processor.tokenizer.padding_side = "left"
    enc = processor(
        text=texts,
        images=flat_images or None,
        padding=True,
        padding_side="left",
        return_tensors="pt",
        return_mm_token_type_ids=True,
    )
    mm = enc.get("mm_token_type_ids")
    if mm is None:
        mm = torch.zeros_like(enc["input_ids"])
    return PromptBatch(
        input_ids=enc["input_ids"],
        attention_mask=enc["attention_mask"],
        mm_token_type_ids=mm,
        pixel_values=enc.get("pixel_values"),
        image_grid_thw=enc.get("image_grid_thw"),
        image_count=torch.tensor([len(imgs) for imgs in images], dtype=torch.long),
    )


@dataclass
class Rollout:
    """Prompts with their sampled responses. B samples, T response length (right padded).

    responses: (B, T) token ids (pad after EOS); response_mask: (B, T) 1 up to and
    including EOS; gen_log_probs: (B, T) log-softmax of generation's processed scores at
    the sampled token (None unless requested).
    """

    prompts: PromptBatch
    responses: torch.Tensor
    response_mask: torch.Tensor
    gen_log_probs: torch.Tensor | None = None

    @property
    def size(self) -> int:
        return self.responses.shape[0]

    def select(self, index: torch.Tensor) -> Rollout:
        index = index.long().cpu()
        return Rollout(
            prompts=self.prompts.select(index),
            responses=self.responses[index],
            response_mask=self.response_mask[index],
            gen_log_probs=None if self.gen_log_probs is None else self.gen_log_probs[index],
        )

    def response_lengths(self) -> torch.Tensor:
        """Response length in tokens (EOS included): (B,)."""
        return self.response_mask.sum(dim=-1)


def response_mask_from_ids(
    responses: torch.Tensor, eos_ids: list[int], pad_id: int | None
) -> torch.Tensor:
    """1 for tokens up to and including the first EOS, 0 after: (B, T) long."""
    is_eos = torch.isin(responses, torch.tensor(eos_ids, device=responses.device))
    after_eos = (torch.cumsum(is_eos.long(), dim=-1) - is_eos.long()) > 0
    return (~after_eos).long()


@torch.no_grad()
def generate(
    model: PreTrainedModel,
    prompts: PromptBatch,
    *,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    top_k: int,
    do_sample: bool,
    suppress_ids: list[int],
    eos_ids: list[int],
    pad_id: int,
    return_log_probs: bool = False,
) -> Rollout:
    """Sample one response per prompt row with HF ``generate``; vision tokens suppressed."""
    out = model.generate(
        input_ids=prompts.input_ids,
        attention_mask=prompts.attention_mask,
        mm_token_type_ids=prompts.mm_token_type_ids,
        **prompts.vision_inputs(),
        max_new_tokens=max_new_tokens,
        do_sample=do_sample,
        temperature=temperature if do_sample else None,
        top_p=top_p if do_sample else None,
        top_k=top_k if do_sample else None,
        suppress_tokens=suppress_ids or None,
        eos_token_id=eos_ids,
        pad_token_id=pad_id,
        output_scores=return_log_probs,
        return_dict_in_generate=True,
        use_cache=True,
    )
    responses = out.sequences[:, prompts.input_ids.shape[1] :]
    mask = response_mask_from_ids(responses, eos_ids, pad_id)
    responses = torch.where(mask.bool(), responses, torch.full_like(responses, pad_id))
    gen_log_probs = None
    if return_log_probs and responses.shape[1] > 0:
        scores = torch.stack(out.scores, dim=1).float()
        gen_log_probs = torch.log_softmax(scores, dim=-1).gather(-1, responses[..., None])[..., 0]
        gen_log_probs = gen_log_probs * mask
    return Rollout(
        prompts=prompts, responses=responses, response_mask=mask, gen_log_probs=gen_log_probs
    )


def _pad_to(x: torch.Tensor, width: int, value: int, left: bool) -> torch.Tensor:
    pad = width - x.shape[1]
    if pad == 0:
        return x
    filler = torch.full((x.shape[0], pad), value, dtype=x.dtype, device=x.device)
    return torch.cat([filler, x] if left else [x, filler], dim=1)


def concat_rollouts(parts: list[Rollout], pad_id: int) -> Rollout:
    """Stack rollouts of different prompt/response widths (prompts left, responses right padded)."""
    if len(parts) == 1:
        return parts[0]
    lp = max(p.prompts.input_ids.shape[1] for p in parts)
    t = max(p.responses.shape[1] for p in parts)
    pixel = [p.prompts.pixel_values for p in parts if p.prompts.pixel_values is not None]
    grids = [p.prompts.image_grid_thw for p in parts if p.prompts.image_grid_thw is not None]
    prompts = PromptBatch(
        input_ids=torch.cat([_pad_to(p.prompts.input_ids, lp, pad_id, True) for p in parts]),
        attention_mask=torch.cat([_pad_to(p.prompts.attention_mask, lp, 0, True) for p in parts]),
        mm_token_type_ids=torch.cat(
            [_pad_to(p.prompts.mm_token_type_ids, lp, 0, True) for p in parts]
        ),
        pixel_values=torch.cat(pixel) if pixel else None,
        image_grid_thw=torch.cat(grids) if grids else None,
        image_count=torch.cat([p.prompts.image_count for p in parts]),
    )
    gen = None
    if all(p.gen_log_probs is not None for p in parts):
        gen = torch.cat([_pad_to(p.gen_log_probs, t, 0, False) for p in parts])
    return Rollout(
        prompts=prompts,
        responses=torch.cat([_pad_to(p.responses, t, pad_id, False) for p in parts]),
        response_mask=torch.cat([_pad_to(p.response_mask, t, 0, False) for p in parts]),
        gen_log_probs=gen,
    )
