"""Domain errors. Raised by services; mapped once to problem+json (REST, see
backend/api/rest/problems.py) and once to GraphQL errors (backend/api/gql/errors.py)."""

from __future__ import annotations

from dataclasses import dataclass


class ConfigurationError(Exception):
    """The process cannot start as configured (bad or missing settings)."""


@dataclass(frozen=True)
class FieldProblem:
    field: str
    code: str
    message: str


class CaravanError(Exception):
    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"
    graphql_code: str = "BAD_USER_INPUT"

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        code: str | None = None,
        problems: list[FieldProblem] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        if code is not None:
            self.code = code
        self.problems = problems or []


class BadRequest(CaravanError):
    pass


class ValidationFailed(CaravanError):
    """One or more fields are invalid. `problems` lists every one; `field` is the first."""

    status = 422
    code = "validation_failed"
    title = "Validation failed"

    @classmethod
    def of(cls, problems: list[FieldProblem]) -> ValidationFailed:
        first = problems[0]
        detail = "; ".join(f"{p.field}: {p.message}" for p in problems)
        return cls(detail, field=first.field, code=first.code, problems=problems)

    @classmethod
    def one(cls, field: str, code: str, message: str) -> ValidationFailed:
        return cls.of([FieldProblem(field, code, message)])


class Unauthenticated(CaravanError):
    status = 401
    code = "unauthenticated"
    title = "Unauthenticated"
    graphql_code = "UNAUTHENTICATED"


class Forbidden(CaravanError):
    status = 403
    code = "forbidden"
    title = "Forbidden"
    graphql_code = "FORBIDDEN"


class NotFound(CaravanError):
    """Also what a caller gets for a record of another tenant or outside its scope."""

    status = 404
    code = "not_found"
    title = "Not found"
    graphql_code = "NOT_FOUND"


class Conflict(CaravanError):
    status = 409
    code = "conflict"
    title = "Conflict"
    graphql_code = "CONFLICT"


class PreconditionFailed(CaravanError):
    status = 412
    code = "version_mismatch"
    title = "Precondition failed"
    graphql_code = "VERSION_MISMATCH"


class PreconditionRequired(CaravanError):
    status = 428
    code = "precondition_required"
    title = "Precondition required"
    graphql_code = "BAD_USER_INPUT"


class InsufficientStorage(CaravanError):
    """The server's disk is full (or over quota): nothing was kept; retry once space is freed."""

    status = 507
    code = "insufficient_storage"
    title = "Insufficient storage"
    graphql_code = "INSUFFICIENT_STORAGE"
