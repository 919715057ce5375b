"""CLI: ``python -m openvlthinker.data.synthetic --out data --seed 0``."""

from __future__ import annotations

import argparse
import logging

from openvlthinker.data.synthetic.examples import GENERATORS
from openvlthinker.data.synthetic.generate import contact_sheet, generate_dataset


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="data", help="output directory (default: data)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--train", type=int, default=48, help="train records per task")
    parser.add_argument("--val", type=int, default=12, help="validation records per task")
    parser.add_argument(
        "--tasks", nargs="*", choices=sorted(GENERATORS), help="tasks (default: all)"
    )
    parser.add_argument("--gallery", help="also write a PNG contact sheet of the val images here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    generate_dataset(args.out, seed=args.seed, n_train=args.train, n_val=args.val, tasks=args.tasks)
    if args.gallery:
        logging.getLogger(__name__).info("contact sheet: %s", contact_sheet(args.out, args.gallery))


if __name__ == "__main__":
    main()
