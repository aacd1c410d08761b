"""Document formats turned into the Markdown-like text the chunker reads: bytes, HTML, reStructuredText, notebooks."""
