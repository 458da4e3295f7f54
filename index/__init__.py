"""Index stage: bulletins in, a Chroma + BM25 index kept incrementally up to date."""
