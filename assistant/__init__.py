"""Assistant stage: retrieval, grounded answers with citations, the chat UI and the CLI."""
