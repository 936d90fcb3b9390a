"""Liveness, readiness and Prometheus metrics."""

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..dependencies import EngineDep, MetricsDep
from ..schemas import Status

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=Status, responses={503: {"model": Status}})
def health(request: Request) -> JSONResponse:
    """Liveness: the process serves requests. Never touches the engine; fails only if loading failed."""
    error: str | None = request.app.state.engine_error
    if error is not None:
        return JSONResponse(Status(status="failed", detail=error).model_dump(exclude_none=True), status_code=503)
    return JSONResponse({"status": "ok"})


@router.get("/ready", response_model=Status, responses={503: {"model": Status}})
def ready(request: Request, engine: EngineDep) -> JSONResponse:
    """Readiness: the engine is loaded and warmed up."""
    if engine.ready:
        return JSONResponse({"status": "ready", "engine": engine.name})
    error: str | None = request.app.state.engine_error
    status = Status(status="failed" if error else "loading", engine=engine.name, detail=error)
    return JSONResponse(status.model_dump(exclude_none=True), status_code=503)


@router.get("/metrics", response_class=Response)
def metrics(service_metrics: MetricsDep) -> Response:
    return Response(generate_latest(service_metrics.registry), media_type=CONTENT_TYPE_LATEST)
