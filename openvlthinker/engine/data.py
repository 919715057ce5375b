"""Training-record order (resumable epochs) and prompt encoding for the engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from openvlthinker.data import Record, build_messages, load_image
from openvlthinker.engine.rollout import PromptBatch, encode_prompts

if TYPE_CHECKING:
    from transformers import ProcessorMixin


class RecordSampler:
    """Hands out records in a seeded per-epoch permutation; its state is (epoch, cursor).

    Epoch e uses ``randperm(N, generator=seed + e)`` (or file order when not shuffling),
    so a resumed run draws exactly the batches an uninterrupted run would.
    """

    def __init__(self, records: list[Record], seed: int, shuffle: bool = True):
        if not records:
            raise ValueError("data: no training records (check the train files of data.tasks)")
        self.records = records
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.cursor = 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(len(self.records))
        generator = torch.Generator().manual_seed(self.seed + epoch)
        return torch.randperm(len(self.records), generator=generator)

    def next(self, k: int) -> list[Record]:
        """The next ``k`` records, rolling over into the next epoch."""
        out = []
        while len(out) < k:
            if self.cursor >= len(self.records):
                self.epoch += 1
                self.cursor = 0
                self._order = self._permutation(self.epoch)
            take = min(k - len(out), len(self.records) - self.cursor)
            out.extend(
                self.records[i] for i in self._order[self.cursor : self.cursor + take].tolist()
            )
            self.cursor += take
        return out

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "cursor": self.cursor, "size": len(self.records)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state["size"] != len(self.records):
            raise ValueError(
                f"trainer.resume_mode: the checkpoint saw {state['size']} training records, "
                f"the data now has {len(self.records)}; resume with the same data.tasks"
            )
        self.epoch, self.cursor = state["epoch"], state["cursor"]
        self._order = self._permutation(self.epoch)


@dataclass
class EncodedPrompts:
    """Encoded prompts plus what scoring needs per prompt: model image size (w, h) or None."""

    batch: PromptBatch
    model_image_sizes: list[tuple[int, int] | None]


def encode_records(
    records: list[Record],
    processor: ProcessorMixin,
    *,
    template: str | None,
    min_pixels: int,
    max_pixels: int,
    factor: int,
    max_prompt_length: int,
    message_options: dict[str, Any],
) -> EncodedPrompts:
    """Load and resize each record's images, build chat messages, encode (left padded)."""
    messages, images, sizes = [], [], []
    for record in records:
        if record.videos:
            raise ValueError(
                f"record {record.id} ({record.source}) has videos: the single-process engine "
                "encodes images only (the Qwen-VL video processors need torchvision), and the "
                "verl plugin does not export video records either; leave the task out with "
                "data.only_tasks"
            )
        loaded = [
            load_image(img, min_pixels=min_pixels, max_pixels=max_pixels, factor=factor)
            for img in record.images
        ]
        pil = [item.image for item in loaded]
        kwargs = dict(message_options)
        if template is not None:
            kwargs["template"] = template
        messages.append(build_messages(record, images=pil, **kwargs))
        images.append(pil)
        sizes.append(loaded[0].model_image_size if loaded else None)
    batch = encode_prompts(processor, messages, images)
    lengths = batch.attention_mask.sum(-1)
    too_long = torch.nonzero(lengths > max_prompt_length).flatten().tolist()
    if too_long:
        r = records[too_long[0]]
        raise ValueError(
            f"data.max_prompt_length={max_prompt_length}: record {r.id} ({r.source}) encodes to "
            f"{int(lengths[too_long[0]])} tokens; raise data.max_prompt_length or model.max_pixels"
        )
    return EncodedPrompts(batch=batch, model_image_sizes=sizes)
