"""The phone app's backend: an HTTP prediction service around :class:`fruits.predict.Predictor`.

* :mod:`~fruits_service.app` — the FastAPI application: routes, CORS, the mobile page;
* :mod:`~fruits_service.settings` — every setting, from ``FRUITS_*`` environment variables;
* :mod:`~fruits_service.upload` — the request body: size limit, multipart or raw, in memory;
* :mod:`~fruits_service.decoding` — JPEG/PNG/WebP/HEIC to the model's input, pixel limit;
* :mod:`~fruits_service.models` — the served model: loaded from the promotion pointer,
  swapped when a new one is promoted, the old one kept when the new one fails to load;
* :mod:`~fruits_service.batching` — concurrent requests share one inference call;
* :mod:`~fruits_service.catalogue` — fruit ids and facts;
* :mod:`~fruits_service.metrics` — Prometheus metrics; :mod:`~fruits_service.errors` — JSON
  errors; :mod:`~fruits_service.schemas` — response shapes for ``/docs``;
  :mod:`~fruits_service.privacy` — the opt-in photo archive and EXIF logging;
* :mod:`~fruits_service.cli` — ``fruits-serve`` (uvicorn).

An installed package beside ``fruits``: the EMR code zip (``fruits`` only) does not carry it.
"""
