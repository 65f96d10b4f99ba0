"""Generation's limits and default controls: what a request may ask and what it gets when it asks nothing.

Kept apart from generation.py, which needs TensorFlow, so that `tfzoo generate --help` and `tfzoo export --help`
show them without importing it."""

MAX_NEW_TOKENS = 1024
MAX_PROMPT_BYTES = 16384
MAX_PROMPTS = 256  # per call; TF Serving's batcher merges requests up to its max_batch_size (128 by default here)
# Greedy output falls into loops without the repetition controls, so the defaults turn them on. Measured by
# benchmarks/text_quality.py on the default text_generator (1.97 held-out bits per byte), 128 greedy bytes after
# each of 48 held-out prompts: 36 repeat a word 3-gram with both off (word distinct-2/3 0.20/0.29), none with these
# (0.57/0.78). Earlier, on a weaker model: shorter n-grams (4 bytes) break words apart; the penalty alone still loops.
DEFAULTS = {"max_new_tokens": 64, "temperature": 0.0, "top_k": 0, "top_p": 1.0, "seed": -1,
            "repetition_penalty": 1.2, "no_repeat_ngram_size": 6}
# Prompts x new tokens per request (see generation.py's docstring): by default, serving_default's largest request.
# Measured with the default text_generator (2 blocks, d_model 128, 256-token context) never emitting ⟨end⟩, on 2
# busy CPU cores: 256 prompts x 64 greedy tokens 2.7 s; 256 x what the context leaves (213), sampled, 10.8 s.
DEFAULT_MAX_TOKENS_PER_REQUEST = MAX_PROMPTS * DEFAULTS["max_new_tokens"]
TOKENS_PER_REQUEST_RANGE = (MAX_NEW_TOKENS, MAX_PROMPTS * MAX_NEW_TOKENS)
