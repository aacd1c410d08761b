"""The lab's documentation as searchable knowledge: embeddings, the Milvus store and retrieval."""
