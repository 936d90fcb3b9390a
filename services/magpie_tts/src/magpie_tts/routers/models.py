"""Model and voice discovery."""

from fastapi import APIRouter, Request

from ..dependencies import EngineDep, SettingsDep
from ..errors import OpenAIError
from ..schemas import ModelCard, ModelList, VoiceCard, VoiceList
from ..voices import aliases_for

router = APIRouter(tags=["models"])


def _card(request: Request, model_id: str) -> ModelCard:
    return ModelCard(id=model_id, created=request.app.state.started, owned_by="tokenlabs")


@router.get("/v1/models")
def list_models(request: Request, settings: SettingsDep) -> ModelList:
    return ModelList(data=[_card(request, settings.model_id)])


@router.get("/v1/audio/models")
def list_audio_models(request: Request, settings: SettingsDep) -> ModelList:
    return ModelList(data=[_card(request, settings.model_id)])


@router.get("/v1/models/{model_id:path}", responses={404: {"description": "Unknown model"}})
def get_model(model_id: str, request: Request, settings: SettingsDep) -> ModelCard:
    if model_id != settings.model_id and model_id not in settings.model_aliases:
        raise OpenAIError(404, f"The model '{model_id}' does not exist.", param="model", code="model_not_found")
    return _card(request, model_id)


@router.get("/v1/audio/voices")
def list_voices(engine: EngineDep) -> VoiceList:
    languages = list(engine.languages)
    return VoiceList(
        voices=[
            VoiceCard(id=s.id, name=s.name, gender=s.gender, languages=languages, aliases=aliases_for(s))
            for s in engine.speakers
        ]
    )
