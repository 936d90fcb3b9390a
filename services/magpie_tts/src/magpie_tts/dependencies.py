"""FastAPI dependencies: settings from the environment, per-app objects from `app.state`."""

from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Request

from .admission import Admission
from .config import Settings
from .engines import SpeechEngine
from .metrics import ServiceMetrics


@lru_cache
def get_settings() -> Settings:
    return Settings()


def get_engine(request: Request) -> SpeechEngine:
    engine: SpeechEngine = request.app.state.engine
    return engine


def get_admission(request: Request) -> Admission:
    admission: Admission = request.app.state.admission
    return admission


def get_metrics(request: Request) -> ServiceMetrics:
    metrics: ServiceMetrics = request.app.state.metrics
    return metrics


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[SpeechEngine, Depends(get_engine)]
AdmissionDep = Annotated[Admission, Depends(get_admission)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
