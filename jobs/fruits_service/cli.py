"""``fruits-serve``: run the prediction service with uvicorn.

    fruits-serve                          # the model promoted under ./output, else its last run
    fruits-serve --model output/model/ds=2026-11-26
    fruits-serve --pointer s3://bucket/output/serving/current-model.json --host 0.0.0.0

Settings not given as options come from the environment (docs/service.md). uvicorn's access
log is off (it would log client addresses); the service logs one line per prediction, without
address or EXIF.
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TypedDict

from fruits import promotion
from fruits.stages import RunPaths


class ModelSource(TypedDict):
    """The ``model`` and ``pointer`` settings (``Settings.from_env`` overrides)."""

    model: str | None
    pointer: str | None


def last_local_model(output: str) -> str | None:
    """The train output folder of the latest local run under ``output`` (by date)."""
    pattern = RunPaths(inputs=(), root=output, ds="*").report("train")
    for report in sorted(glob.glob(pattern), reverse=True):
        found: str | None = json.loads(Path(report).read_text()).get("output")
        if found:
            return found
    return None


def model_source(args: argparse.Namespace) -> ModelSource:
    """``--model`` or ``--pointer`` as given; else ``$FRUITS_MODEL_POINTER``; else the pointer
    under ``--output`` if a model was promoted there; else its last local run's model."""
    if args.model or args.pointer:
        return {"model": args.model, "pointer": args.pointer}
    if os.environ.get("FRUITS_MODEL_POINTER"):
        return {"model": None, "pointer": None}  # Settings.from_env reads it
    pointer = promotion.default_pointer(str(Path(args.output).resolve()))
    if Path(pointer).is_file():
        return {"model": None, "pointer": pointer}
    last = last_local_model(str(Path(args.output).resolve()))
    if last is None:
        raise SystemExit(
            f"fruits-serve: no model under {args.output} (no {pointer}, no train report): "
            "run the pipeline first (make run) or pass --model / --pointer"
        )
    return {"model": last, "pointer": None}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fruits-serve", description=__doc__.split("\n\n")[0])
    source = p.add_mutually_exclusive_group()
    source.add_argument("--model", help="a train output folder to serve (never swapped)")
    source.add_argument("--pointer", help="the current-model pointer to follow (URI)")
    p.add_argument("--output", default="output", help="pipeline output root (default: output)")
    p.add_argument("--weights", help="MobileNetV2 weights (default: $FRUITS_WEIGHTS, imagenet)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--log-level", default="info")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    import uvicorn

    from fruits_service.app import create_app
    from fruits_service.settings import Settings

    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    try:
        settings = Settings.from_env(**model_source(args), weights=args.weights)
    except ValueError as exc:
        print(f"fruits-serve: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
    )


if __name__ == "__main__":
    main()
