"""The LLM layer: one resource for any OpenAI-compatible endpoint, online or batch, cached in DuckDB."""

from crmagent_dagster.llm.core import AgentSettings, LLMRequest, LLMResult
from crmagent_dagster.llm.resource import LLMResource, LLMRun, llm_resource_from_env

__all__ = ["AgentSettings", "LLMRequest", "LLMResource", "LLMResult", "LLMRun", "llm_resource_from_env"]
