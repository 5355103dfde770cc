"""Generation and scoring: the only place torch, Lightning and transformers are imported.

Engines (``engines/``) generate with per-row decoding (``generation``, ``sampling``, ``datamodule``);
``requests`` is the torch-free half (request types, tokenizer, dtype rule); ``embeddings`` and
``relevance`` give the one prompt-response cosine; ``judges/`` score responses.
"""
