"""Count token forgeries and OAuth abuse for the security report, without touching the tests'
own assertions: decorate a test that tries a forgery with `@forgery` (or `@forgeries(n)` when
one test tries n of them). Each run adds its attempts to `forgeries_tried`; when the test fails
(the refusal it asserts did not happen) they also go to `forgeries_accepted`, so a failing
forgery test can never leave the figure at 0.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tests.security.figures import count

Test = TypeVar("Test", bound=Callable[..., Awaitable[None]])


def forgeries(attempts: int) -> Callable[[Test], Test]:
    def decorate(test: Test) -> Test:
        @functools.wraps(test)
        async def counted(*args: Any, **kwargs: Any) -> None:
            count("forgeries_tried", attempts)
            count("forgeries_accepted", 0)
            try:
                await test(*args, **kwargs)
            except AssertionError:
                count("forgeries_accepted", attempts)
                raise

        return counted  # type: ignore[return-value]

    return decorate


forgery = forgeries(1)
