"""Response shapes for the OpenAPI documentation at ``/docs``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class ErrorDetail(BaseModel):
    status: int
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class Candidate(BaseModel):
    model_config = ConfigDict(extra="allow")
    label: str
    probability: float
    id: str
    fruit: str | None = None


class PredictionAnswer(BaseModel):
    """``fruits.predict.Prediction.as_dict()`` plus the service's fields; extra keys pass."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())
    label: str  # a class label, or "unknown"
    known: bool
    id: str | None  # catalogue id of the label (GET /v1/fruits/{id})
    level: str  # "variety", "fruit" or "unknown": how precise the label is
    fruit: str | None  # name to show (the facts' common name)
    variety: str | None  # cultivar to show, when the species names one
    fruit_key: str | None  # the model's fruit ("apple"), None when unknown
    variety_label: str | None  # the model's variety ("Apple Braeburn"), when sure of it
    probability: float
    fruit_probability: float
    similarity: float | None
    top: list[Candidate]  # likeliest varieties
    top_fruits: list[dict[str, Any]]  # likeliest fruits: {"label", "probability"}
    info: dict[str, Any] | None  # the fruit's facts
    reason: str | None  # why "unknown"
    request_id: str
    model_version: str
    image: dict[str, Any]


class Health(BaseModel):
    status: str  # "ok" or "no_model"
    model: dict[str, Any] | None
    source: str | None
    last_error: str | None


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error("no photo in the request, or a malformed form"),
    404: _error("no such fruit"),
    413: _error("upload too large (bytes) or too many pixels"),
    415: _error("not a JPEG, PNG, WebP or HEIC/HEIF image"),
    422: _error("a damaged image"),
    503: _error("no model loaded yet, too many photos waiting, or the model just changed"),
}

_BINARY = {"schema": {"type": "string", "format": "binary"}}
PHOTO_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"photo": {"type": "string", "format": "binary"}},
                    "required": ["photo"],
                }
            },
            **{
                kind: _BINARY
                for kind in (
                    "image/jpeg",
                    "image/png",
                    "image/webp",
                    "image/heic",
                    "application/octet-stream",
                )
            },
        },
    }
}
