"""A verl rollout backend ``hf`` for the CPU: HF ``generate`` in one Ray actor per replica.

verl's rollout has two halves. The replica (:class:`HFReplica`, registered with
``RolloutReplicaRegistry``) starts the server the agent loop sends token-in/token-out
requests to; here that server is :class:`HFRolloutServer`, one Ray actor holding the policy
and answering ``generate`` with the sampled ids and their log-probs. The in-worker adapter
(:class:`HFRolloutAdapter`, a ``BaseRollout`` that verl looks up in ``_ROLLOUT_REGISTRY``)
lives in each actor worker and receives the trainer's weights on every sync; the replica's
first rank forwards them to the server.

Vision special tokens (``<|image_pad|>``, ...) are never sampled: a sampled one would make
the next forward pass count more image tokens than image features.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable
from typing import Any

import ray
import torch
from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.replica import RolloutReplica, TokenOutput

logger = logging.getLogger(__name__)

#: ``actor_rollout_ref.rollout.name`` of this backend.
ROLLOUT_NAME = "hf"


def server_name(replica_rank: int) -> str:
    """The Ray actor name of a replica's server (the adapter finds it by this name)."""
    return f"openvlthinker_hf_rollout_{replica_rank}"


def _world_size(config: Any) -> int:
    return (
        config.tensor_model_parallel_size
        * config.data_parallel_size
        * config.pipeline_model_parallel_size
    )


class HFRolloutServer:
    """The policy and HF ``generate``; one request at a time (the tiny model is fast and
    HF ``generate`` is not thread-safe)."""

    def __init__(self, config: Any, model_config: Any, replica_rank: int):
        from verl.utils.config import omega_conf_to_dataclass
        from verl.workers.config import HFModelConfig

        from openvlthinker.engine.modeling import load_policy, never_sampled_ids

        if not isinstance(model_config, HFModelConfig):
            # the replica passes actor_rollout_ref.model as the config section
            model_config = omega_conf_to_dataclass(model_config, dataclass_type=HFModelConfig)
        self.config = config
        self.replica_rank = replica_rank
        self.tokenizer = model_config.tokenizer
        self.processor = model_config.processor
        self.model = load_policy(model_config.local_path, torch.float32, "cpu").eval()
        vocab = self.model.get_output_embeddings().weight.shape[0]
        self.suppressed = never_sampled_ids(self.tokenizer, vocab)
        self.global_steps: int | None = None
        self.requests = 0
        self.lock = asyncio.Lock()

    def _inputs(self, prompt_ids: list[int], image_data: list | None) -> dict[str, torch.Tensor]:
        ids = torch.tensor([prompt_ids], dtype=torch.long)
        inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        if image_data:
            if self.processor is None:
                raise ValueError(
                    "rollout request carries images but the model has no image processor "
                    f"({self.config.name} rollout, replica {self.replica_rank})"
                )
            vision = self.processor.image_processor(images=list(image_data), return_tensors="pt")
            inputs["pixel_values"] = vision["pixel_values"]
            inputs["image_grid_thw"] = vision["image_grid_thw"]
            # without it generate gives the image tokens text positions (M-RoPE), unlike
            # the actor's forward pass
            types = self.processor.create_mm_token_type_ids([prompt_ids])
            inputs["mm_token_type_ids"] = torch.tensor(types, dtype=torch.long)
        return inputs

    def _generate(
        self, prompt_ids: list[int], sampling_params: dict[str, Any], image_data: list | None
    ) -> TokenOutput:
        params = dict(sampling_params)
        limit = self.config.response_length
        max_tokens = int(params.pop("max_tokens", params.pop("max_new_tokens", limit)) or limit)
        temperature = float(params.get("temperature", 1.0) or 0.0)
        top_p = float(params.get("top_p", 1.0) or 1.0)
        top_k = int(params.get("top_k", -1) or -1)
        sample = temperature > 0
        inputs = self._inputs(prompt_ids, image_data)
        kwargs: dict[str, Any] = {
            "max_new_tokens": max(1, min(max_tokens, limit)),
            "do_sample": sample,
            "suppress_tokens": self.suppressed or None,
            "return_dict_in_generate": True,
            "output_logits": True,
        }
        if sample:
            kwargs.update(temperature=temperature, top_p=top_p, top_k=top_k if top_k > 0 else 0)
        with torch.no_grad():
            out = self.model.generate(**inputs, **kwargs)
        tokens = out.sequences[0, inputs["input_ids"].shape[1] :]
        # log-probs of the sampled ids under the policy at the sampling temperature, as the
        # actor scores them (raw logits: the suppressed ids are ~never likely anyway)
        logits = torch.stack(out.logits, dim=1)[0].float()
        if sample:
            logits = logits / temperature
        log_probs = torch.log_softmax(logits, dim=-1).gather(-1, tokens[:, None])[:, 0]
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos])
        finished = len(tokens) > 0 and int(tokens[-1]) in eos_ids
        return TokenOutput(
            token_ids=tokens.tolist(),
            log_probs=log_probs.tolist() if params.get("logprobs") else None,
            stop_reason="completed" if finished else None,
            num_preempted=0,
            extra_fields={"global_steps": self.global_steps},
        )

    async def generate(
        self,
        request_id: str,
        *,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        image_data: list | None = None,
        video_data: list | None = None,
        **_kwargs: Any,
    ) -> TokenOutput:
        """verl's token-in/token-out call (``LLMServerClient.generate``)."""
        if video_data:
            raise NotImplementedError("the hf rollout takes images, not videos")
        async with self.lock:
            self.requests += 1
            return await asyncio.get_running_loop().run_in_executor(
                None, self._generate, prompt_ids, sampling_params, image_data
            )

    async def update_weights(self, state: dict[str, torch.Tensor], global_steps: Any) -> int:
        """Load the trainer's full weights; every parameter must be named."""
        async with self.lock:
            own = self.model.state_dict()
            missing = sorted(set(own) - set(state))
            unknown = sorted(set(state) - set(own))
            if missing or unknown:
                raise KeyError(
                    f"hf rollout replica {self.replica_rank}: weight sync has "
                    f"{len(missing)} missing ({missing[:3]}) and {len(unknown)} unknown "
                    f"({unknown[:3]}) parameter names"
                )
            self.model.load_state_dict(state)
            self.global_steps = global_steps
            return len(state)

    async def stats(self) -> dict[str, Any]:
        """Requests served and the step of the last weight sync (for tests and logs)."""
        return {"requests": self.requests, "global_steps": self.global_steps}

    # verl's control calls: a CPU server frees nothing and has no queue to drain
    async def wake_up(self) -> None:
        return None

    async def sleep(self) -> None:
        return None

    async def clear_kv_cache(self) -> None:
        return None

    async def release_kv_cache(self) -> None:
        return None

    async def resume_kv_cache(self) -> None:
        return None

    async def resume_generation(self) -> None:
        return None

    async def abort_all_requests(self, reject_request: bool = False) -> dict[str, Any]:
        return {"aborted_count": 0, "request_ids": []}

    async def start_profile(self, **_kwargs: Any) -> None:
        return None

    async def stop_profile(self) -> None:
        return None


class HFReplica(RolloutReplica):
    """One :class:`HFRolloutServer` per replica, on the node of the replica's first worker."""

    async def launch_servers(self) -> None:
        if not self.workers:
            raise RuntimeError(f"hf rollout replica {self.replica_rank} has no workers")
        node_id = await self.workers[0].__ray_call__.remote(
            lambda _self: ray.get_runtime_context().get_node_id()
        )
        name = server_name(self.replica_rank)
        server = (
            ray.remote(HFRolloutServer)
            .options(
                name=name,
                num_cpus=0,
                max_concurrency=self.max_concurrency,
                scheduling_strategy=ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(
                    node_id=node_id, soft=True
                ),
            )
            .remote(
                config=self.config, model_config=self.model_config, replica_rank=self.replica_rank
            )
        )
        await server.stats.remote()
        self.servers = [server]
        self._server_handle = server
        self._server_address = name


class HFRolloutAdapter(BaseRollout):
    """The in-worker half: verl hands it the trainer's weights; the replica's first rank
    sends them to the server."""

    def __init__(self, config: Any, model_config: Any, device_mesh: Any, replica_rank: int = -1):
        super().__init__(config, model_config, device_mesh)
        rank = int(os.environ.get("RANK", 0))
        world = _world_size(self.config)
        self.replica_rank = rank // world if replica_rank == -1 else replica_rank
        self.is_leader = rank % world == 0
        self._server: Any = None

    def _server_handle(self) -> Any:
        if self._server is None:
            self._server = ray.get_actor(server_name(self.replica_rank))
        return self._server

    async def resume(self, tags: list[str]) -> None:
        return None

    async def release(self) -> None:
        return None

    async def update_weights(
        self,
        weights: Iterable[tuple[str, torch.Tensor]],
        wire_format: str = "named_tensors",
        **kwargs: Any,
    ) -> None:
        if wire_format != "named_tensors":
            raise NotImplementedError(f"hf rollout: wire_format {wire_format!r}")
        # every rank walks the generator: gathering a sharded parameter is collective
        state = {name: tensor.detach().to("cpu", copy=True) for name, tensor in weights}
        if self.is_leader:
            await self._server_handle().update_weights.remote(state, kwargs.get("global_steps"))
