"""The lab's GPU node as the embedded lab runs it: an Ollama API server backed by an in-process GGUF model."""
