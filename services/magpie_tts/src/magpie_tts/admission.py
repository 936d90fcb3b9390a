"""Bounded admission: a fixed number of streams synthesise, a bounded number wait, the rest get 429."""

import asyncio

from .errors import OpenAIError


class Overloaded(OpenAIError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(
            429,
            "The speech service is at capacity. Please retry shortly.",
            type_="rate_limit_error",
            code="server_overloaded",
            headers={"retry-after": str(retry_after)},
        )


class Ticket:
    """A reserved place: first in the queue, then, after `acquire`, in a synthesis slot."""

    def __init__(self, admission: "Admission") -> None:
        self._admission = admission
        self._holding = False
        self._released = False

    async def acquire(self) -> None:
        await self._admission._slots.acquire()
        self._holding = True
        self._admission.waiting -= 1
        self._admission.active += 1

    def release(self) -> None:
        # Called from the stream's cleanup and again from the response's background task;
        # only the first call counts.
        if self._released:
            return
        self._released = True
        if self._holding:
            self._admission.active -= 1
            self._admission._slots.release()
        else:
            self._admission.waiting -= 1


class Admission:
    def __init__(self, max_active: int, max_queued: int, retry_after: int) -> None:
        self.max_active = max_active
        self.max_queued = max_queued
        self.retry_after = retry_after
        self._slots = asyncio.Semaphore(max_active)
        self.active = 0
        self.waiting = 0

    def reserve(self) -> Ticket:
        """A ticket, or `Overloaded` when every slot is taken and the queue is full."""
        if self.active + self.waiting >= self.max_active + self.max_queued:
            raise Overloaded(self.retry_after)
        self.waiting += 1
        return Ticket(self)
