"""Deterministic example data: rendered scenes with questions answerable from the image.

``python -m openvlthinker.data.synthetic --out data`` writes, for every task,
``data/<task>/{train,val}.jsonl`` and ``data/<task>/images/*.png``. Each record stores
the scene it was rendered from in ``metadata.scene`` and the facts its answer follows
from in ``metadata.facts``, so tests can re-render the image and re-derive the answer.
"""

from openvlthinker.data.synthetic.examples import GENERATORS, register_generator
from openvlthinker.data.synthetic.generate import generate_dataset, generate_records
from openvlthinker.data.synthetic.render import render_scene

__all__ = [
    "GENERATORS",
    "generate_dataset",
    "generate_records",
    "register_generator",
    "render_scene",
]
