"""Concurrent requests share one inference call.

Photos wait in one queue; a single consumer takes the first and every other already waiting
(up to ``max_batch``) and runs them as one batch in the inference thread. No photo waits for
others to arrive: batches form only from what queued up while the previous batch ran, so an
idle service answers at once and a busy one spends less time per photo (bench/service_load.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

Shared = TypeVar("Shared")  # what a batch's photos share (the model that answered them)
Answer = TypeVar("Answer")  # one photo's answer


class Overloaded(RuntimeError):
    """The queue is full: the client should retry later."""


class Batcher(Generic[Shared, Answer]):
    """``await submit(array)`` → this photo's share of ``run(stacked arrays)``."""

    def __init__(
        self,
        run: Callable[[npt.NDArray[np.float32]], tuple[Shared, list[Answer]]],
        max_batch: int,
        max_queue: int,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.run, self.max_batch, self.on_batch = run, max_batch, on_batch
        self.queue: asyncio.Queue[
            tuple[npt.NDArray[np.float32], asyncio.Future[tuple[Shared, Answer]]]
        ] = asyncio.Queue(maxsize=max_queue)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._consume())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.executor.shutdown(wait=True)

    async def submit(self, array: npt.NDArray[np.float32]) -> tuple[Shared, Answer]:
        future: asyncio.Future[tuple[Shared, Answer]] = asyncio.get_running_loop().create_future()
        try:
            self.queue.put_nowait((array, future))
        except asyncio.QueueFull:
            raise Overloaded(f"{self.queue.maxsize} photos already wait for inference") from None
        return await future

    async def _consume(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < self.max_batch and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            batch = [(a, f) for a, f in batch if not f.cancelled()]  # clients gone
            if not batch:
                continue
            if self.on_batch:
                self.on_batch(len(batch))
            # One inference call per array shape (shapes differ only across a model swap).
            for shape in sorted({array.shape for array, _ in batch}):
                await self._run([item for item in batch if item[0].shape == shape])

    async def _run(
        self, batch: list[tuple[npt.NDArray[np.float32], asyncio.Future[tuple[Shared, Answer]]]]
    ) -> None:
        """One inference call; whatever goes wrong fails these requests, never the consumer."""
        try:
            stacked = np.stack([array for array, _ in batch])
            loop = asyncio.get_running_loop()
            shared, answers = await loop.run_in_executor(self.executor, self.run, stacked)
            results = list(zip(batch, answers, strict=True))
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), answer in results:
            if not future.done():
                future.set_result((shared, answer))
