"""POST /api/v1/citizens:status: whether citizens have an eBox, as SOAP's hasAnEbox tells."""

from __future__ import annotations

from flask import Response, jsonify

from ebox import national_number
from ebox.mailbox.queries import recipient_status
from ebox.soap import faults

from . import problems
from .blueprint import bp
from .problems import ApiProblem, json_body

MAX_NATIONAL_NUMBERS = 1000


@bp.post("/citizens:status")
def citizens_status() -> Response:
    numbers = _national_numbers(json_body())
    normalised = [national_number.normalise(number) for number in numbers]
    citizens = recipient_status(sorted(set(normalised)))
    answers = []
    for number, key in zip(numbers, normalised, strict=True):
        citizen = citizens.get(key)
        answers.append(
            {
                "nationalNumber": number,
                "exists": citizen is not None,
                "activated": citizen is not None and citizen.is_activated,
                "electronicOnly": citizen is not None and citizen.is_electronic_only,
            }
        )
    return jsonify(citizens=answers)


def _national_numbers(body: object) -> list[str]:
    if not isinstance(body, dict) or set(body) != {"nationalNumbers"}:
        raise ApiProblem(
            400, problems.INVALID_REQUEST, "The body must be an object with nationalNumbers only."
        )
    numbers = body["nationalNumbers"]
    if not isinstance(numbers, list):
        raise ApiProblem(400, problems.INVALID_REQUEST, "nationalNumbers must be an array.")
    if len(numbers) > MAX_NATIONAL_NUMBERS:
        raise ApiProblem(
            400,
            faults.TOO_MANY_IDS,
            f"At most {MAX_NATIONAL_NUMBERS} national numbers per call; split the request.",
        )
    for position, number in enumerate(numbers):
        if not isinstance(number, str) or not national_number.is_valid(number):
            raise ApiProblem(
                400,
                faults.INVALID_NATIONAL_NUMBER,
                f"nationalNumbers[{position}] is not a valid national register number.",
            )
    return numbers
