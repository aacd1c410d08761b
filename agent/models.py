"""The chat model behind the agent, chosen by configuration: Ollama's API (default), OpenAI-compatible, scripted.

The lab's GPU node serves Ollama, also in the embedded lab, so the agent always talks to Ollama through
``langchain-ollama`` unless ``llm.provider`` says otherwise. Model name, URL and options come from
``Settings``; a model spec string (``labops eval --model``) overrides them: ``scripted``, ``local`` (the
embedded lab's Ollama), ``ollama:MODEL[@URL]``, ``openai:URL:MODEL``.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel

from core.config import Settings
from core.endpoints import ollama_url
from core.errors import ConfigError

__all__ = ["ModelInfo", "chat_model", "close_model", "one_token", "settings_for_spec"]


class ModelInfo(dict[str, Any]):
    """``{"provider", "model", "url"}`` of the model in use (shown in answers and eval reports)."""


def settings_for_spec(settings: Settings, spec: str) -> Settings:
    """Settings whose ``llm`` section follows a model spec (see the module docstring)."""
    llm = settings.llm.model_dump()
    if spec == "scripted":
        llm["provider"] = "scripted"
    elif spec == "local":
        llm.update(provider="ollama", ollama_url=None)
    elif spec.startswith("ollama:"):
        rest = spec[len("ollama:") :]
        name, _, url = rest.partition("@")
        if not name:
            raise ConfigError(f"model spec {spec!r}: write ollama:MODEL or ollama:MODEL@http://host:11434")
        llm.update(provider="ollama", model=name, ollama_url=url or settings.llm.ollama_url)
    elif spec.startswith("openai:"):
        url, _, name = spec[len("openai:") :].rpartition(":")
        if not url or not name or "://" not in url:
            raise ConfigError(f"model spec {spec!r}: write openai:http://host:8000/v1:MODEL")
        llm.update(provider="openai", openai_base_url=url, model=name)
    else:
        raise ConfigError(f"unknown model spec {spec!r}: use scripted, local, ollama:MODEL[@URL] or openai:URL:MODEL")
    return settings.model_copy(update={"llm": settings.llm.model_validate(llm)})


def chat_model(settings: Settings, *, scripted: BaseChatModel | None = None) -> tuple[BaseChatModel, ModelInfo]:
    """The configured chat model and a description of it."""
    cfg = settings.llm
    if cfg.provider == "scripted":
        if scripted is None:
            from agent.scripted import ScriptedChatModel, load_script

            script = load_script(cfg.script) if cfg.script else ["The scripted model has no script for this question."]
            scripted = (
                ScriptedChatModel(replies=script) if isinstance(script, list) else ScriptedChatModel(responder=script)
            )
        return scripted, ModelInfo(provider="scripted", model="scripted", url=None)
    if cfg.provider == "openai":
        from langchain_openai import ChatOpenAI

        if not cfg.openai_base_url:
            raise ConfigError("llm.provider is openai but llm.openai_base_url is unset", setting="llm.openai_base_url")
        key = cfg.openai_api_key.get_secret_value() if cfg.openai_api_key else "unused"
        model = ChatOpenAI(
            model=cfg.model,
            base_url=cfg.openai_base_url,
            api_key=key,
            temperature=cfg.temperature,
            max_completion_tokens=cfg.num_predict,
            timeout=cfg.timeout,
            seed=cfg.seed,
        )
        return model, ModelInfo(provider="openai", model=cfg.model, url=cfg.openai_base_url)
    from langchain_ollama import ChatOllama

    url = ollama_url(settings)
    model_ollama = ChatOllama(
        model=cfg.model,
        base_url=url,
        temperature=cfg.temperature,
        num_ctx=cfg.num_ctx,
        num_predict=cfg.num_predict,
        seed=cfg.seed,
        keep_alive=cfg.keep_alive,
        client_kwargs={"timeout": cfg.timeout},
    )
    return model_ollama, ModelInfo(provider="ollama", model=cfg.model, url=url)


def close_model(model: BaseChatModel) -> None:
    """Close the HTTP clients a chat model keeps open (ChatOllama leaves its httpx client open)."""
    client = getattr(model, "_client", None)
    close = getattr(client, "close", None)
    if callable(close):
        close()


def one_token(model: BaseChatModel) -> BaseChatModel:
    """A copy of ``model`` that writes at most one token (to have a prompt evaluated and cached, nothing more).

    A model of another kind (the scripted one) is returned as it is.
    """
    for field in ("num_predict", "max_completion_tokens", "max_tokens"):
        if field in type(model).model_fields:
            return model.model_copy(update={field: 1})
    return model
