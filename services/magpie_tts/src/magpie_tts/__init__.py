"""OpenAI-compatible speech service for NVIDIA Magpie TTS."""

__version__ = "0.1.0"
