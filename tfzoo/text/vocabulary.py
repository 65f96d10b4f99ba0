"""The byte tokenizer's token ids: UTF-8 bytes are 0-255, then four special tokens. Kept apart from tokenizer.py,
which needs TensorFlow, so that the command line's checks and help know the vocabulary without importing it."""

NUM_BYTES = 256
PAD = 256  # fills short sequences; targets equal to PAD are ignored by the loss and the metrics
BEGIN = 257  # starts every document and every prompt
END = 258  # ends a document or a headline; generation stops when it is sampled
SEPARATOR = 259  # between an article and its headline
VOCAB_SIZE = 260
